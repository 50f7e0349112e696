//! The bridge's health metrics reach CloudWatch (a real moto server), where the stack's
//! alarms read them: counts as deltas per call, the spool depth as a gauge.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_cloudwatch::types::Statistic;
use fmn_bridge::cloudwatch::{Publisher, RECEIVED, SPOOL_DEPTH};
use fmn_bridge::{Metrics, Source};

async fn statistic(cw: &aws_sdk_cloudwatch::Client, ns: &str, name: &str, stat: Statistic) -> f64 {
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace(ns)
        .metric_name(name)
        .start_time((now - std::time::Duration::from_secs(3600)).into())
        .end_time((now + std::time::Duration::from_secs(60)).into())
        .period(3600)
        .statistics(stat.clone())
        .send()
        .await
        .expect("GetMetricStatistics");
    let points = out.datapoints();
    match stat {
        Statistic::Sum => points.iter().filter_map(|p| p.sum()).sum(),
        _ => points
            .iter()
            .filter_map(|p| p.maximum())
            .fold(f64::NAN, f64::max),
    }
}

#[tokio::test]
async fn health_metrics_reach_cloudwatch_as_the_alarms_read_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fmn-bridge-moto");
    let moto = fmn_emulator::SharedMoto::get(&root, &dir)
        .await
        .expect("moto");
    let aws = fmn_emulator::config(&moto.endpoint).await;
    let cw = aws_sdk_cloudwatch::Client::new(&aws);
    let ns = format!("fmn/test-{}", std::process::id());
    let metrics = Arc::new(Metrics::default());

    for _ in 0..3 {
        metrics.received(Source::Amqp);
    }
    let mut publisher = Publisher::new(cw.clone(), ns.clone(), metrics.clone());
    metrics.spool_depth.store(7, Relaxed);
    publisher.publish_once().await.expect("first publication");
    metrics.received(Source::Fedmsg);
    metrics.spool_depth.store(2, Relaxed);
    publisher.publish_once().await.expect("second publication");

    assert_eq!(statistic(&cw, &ns, RECEIVED, Statistic::Sum).await, 4.0);
    assert_eq!(
        statistic(&cw, &ns, SPOOL_DEPTH, Statistic::Maximum).await,
        7.0
    );
}
