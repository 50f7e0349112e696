//! Deciding, per notification, between sending now and holding for a digest.

use fmn_queue::NotificationJob;
use futures::future::join_all;

use crate::store::now_ms;
use crate::{DIGEST_TOPIC, DigestError, FloodAdmission, HeldStore};

/// At most `max` notifications per (user, context) in each window of `window_secs`; the rest
/// of a window is held and sent as one summary when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimit {
    /// Notifications sent one by one per window.
    pub max: u64,
    /// The window's length (seconds).
    pub window_secs: u64,
}

impl Default for FloodLimit {
    /// 20 notifications in 5 minutes.
    fn default() -> Self {
        FloodLimit {
            max: 20,
            window_secs: 300,
        }
    }
}

impl FloodLimit {
    /// Reads `FMN_FLOOD_MAX` and `FMN_FLOOD_WINDOW_SECS` from `vars` (each defaults as
    /// [`FloodLimit::default`]); a value that is not a positive integer is an error naming it.
    pub fn from_vars(vars: &fmn_lambda::Vars) -> Result<FloodLimit, fmn_lambda::ConfigError> {
        let read = |name: &str, default: u64| match vars.parse_or(name, default)? {
            0 => Err(fmn_lambda::ConfigError::invalid(
                name,
                "0 is not a positive integer",
            )),
            n => Ok(n),
        };
        let default = FloodLimit::default();
        Ok(FloodLimit {
            max: read("FMN_FLOOD_MAX", default.max)?,
            window_secs: read("FMN_FLOOD_WINDOW_SECS", default.window_secs)?,
        })
    }
}

/// What a sender does with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Deliver it now.
    Send,
    /// It was held for a digest: deliver nothing now.
    Held,
}

/// Decides between sending and holding; senders call [`Gate::admit`] before delivering.
pub trait Admit {
    /// Holds `job` if its context wants a digest or the flood limit is reached.
    fn admit(
        &self,
        job: &NotificationJob,
    ) -> impl Future<Output = Result<Admission, DigestError>> + Send;

    /// [`Admit::admit`] for every notification of a batch, answered in order. By default one
    /// admission each, concurrently; the deployed [`Gate`] writes the batch's flood
    /// admissions in one transaction ([`HeldStore::admit_all`](crate::HeldStore::admit_all)).
    fn admit_all(
        &self,
        jobs: &[&NotificationJob],
    ) -> impl Future<Output = Vec<Result<Admission, DigestError>>> + Send
    where
        Self: Sync,
    {
        futures::future::join_all(jobs.iter().map(|job| self.admit(job)))
    }
}

/// The deployed gate: digests and the flood limit over a [`HeldStore`].
#[derive(Debug, Clone)]
pub struct Gate {
    store: HeldStore,
    limit: FloodLimit,
    clock: fn() -> u64,
}

/// Seconds since the Unix epoch, from the system clock.
fn system_clock() -> u64 {
    now_ms() / 1000
}

impl Gate {
    /// A gate holding into `store` with the flood limit `limit`.
    pub fn new(store: HeldStore, limit: FloodLimit) -> Self {
        Gate {
            store,
            limit,
            clock: system_clock,
        }
    }

    /// The same gate reading the time (seconds since the Unix epoch) from `clock`, so that a
    /// test can put a whole batch in one flood window however long the batch takes.
    pub fn with_clock(self, clock: fn() -> u64) -> Self {
        Gate { clock, ..self }
    }

    /// The deployed gate over the held `table` (`FMN_HELD_TABLE`) with the flood limit
    /// `limit`; none without a table.
    pub fn from_table(
        client: aws_sdk_dynamodb::Client,
        table: Option<&str>,
        limit: FloodLimit,
    ) -> Option<Gate> {
        table.map(|t| Gate::new(HeldStore::new(client, t), limit))
    }
}

impl Admit for Gate {
    async fn admit(&self, job: &NotificationJob) -> Result<Admission, DigestError> {
        if job.message.topic == DIGEST_TOPIC {
            // A digest itself is never held again.
            return Ok(Admission::Send);
        }
        if job.settings.is_digest() {
            self.store.hold(job, None).await?;
            return Ok(Admission::Held);
        }
        let window = self.limit.window_secs.max(1);
        let now = (self.clock)();
        let start = now - now % window;
        let admitted = self
            .store
            .admit_once(
                &job.user,
                job.context,
                start,
                window,
                &job.message.id,
                self.limit.max,
            )
            .await?;
        if admitted {
            return Ok(Admission::Send);
        }
        self.hold_flooded(job, start + window).await
    }

    /// The flood admissions of the batch in one transaction ([`HeldStore::admit_all`]);
    /// digest holds and what is over the limit are held as [`Gate::admit`] holds them.
    async fn admit_all(&self, jobs: &[&NotificationJob]) -> Vec<Result<Admission, DigestError>> {
        let window = self.limit.window_secs.max(1);
        let mut out: Vec<Option<Result<Admission, DigestError>>> =
            jobs.iter().map(|_| None).collect();
        let (mut digests, mut flood) = (Vec::new(), Vec::new());
        for (i, job) in jobs.iter().enumerate() {
            if job.message.topic == DIGEST_TOPIC {
                out[i] = Some(Ok(Admission::Send));
            } else if job.settings.is_digest() {
                digests.push(i);
            } else {
                let now = (self.clock)();
                flood.push((i, now - now % window));
            }
        }
        let held = join_all(digests.iter().map(|i| self.store.hold(jobs[*i], None))).await;
        for (i, held) in digests.into_iter().zip(held) {
            out[i] = Some(held.map(|_| Admission::Held));
        }
        let wanted: Vec<FloodAdmission<'_>> = (flood.iter())
            .map(|(i, start)| FloodAdmission {
                user: &jobs[*i].user,
                context: jobs[*i].context,
                window_start: *start,
                message_id: &jobs[*i].message.id,
            })
            .collect();
        let admitted = (self.store)
            .admit_all(&wanted, window, self.limit.max)
            .await;
        let mut over = Vec::new();
        for ((i, start), admitted) in flood.into_iter().zip(admitted) {
            match admitted {
                Ok(true) => out[i] = Some(Ok(Admission::Send)),
                Ok(false) => over.push((i, start + window)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let held = join_all(
            over.iter()
                .map(|(i, until)| self.hold_flooded(jobs[*i], *until)),
        )
        .await;
        for ((i, _), held) in over.into_iter().zip(held) {
            out[i] = Some(held);
        }
        out.into_iter()
            // Every notification is answered above; none is sent unanswered.
            .map(|a| a.unwrap_or_else(|| Err(DigestError::Dynamo("not admitted".into()))))
            .collect()
    }
}

impl Gate {
    /// Holds `job`, over the flood limit, for its window's summary (due at `until`).
    async fn hold_flooded(
        &self,
        job: &NotificationJob,
        until: u64,
    ) -> Result<Admission, DigestError> {
        if self.store.hold(job, Some(until)).await? {
            tracing::info!(user = %job.user, context = job.context.as_str(),
                "flood limit reached; held for this window's summary");
        }
        Ok(Admission::Held)
    }
}

/// Sends everything at once: no digests, no flood limit (unit tests, or no held table).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGate;

impl Admit for NoGate {
    async fn admit(&self, _job: &NotificationJob) -> Result<Admission, DigestError> {
        Ok(Admission::Send)
    }
}

/// An optional gate: none sends everything at once.
impl<G: Admit + Sync> Admit for Option<G> {
    async fn admit(&self, job: &NotificationJob) -> Result<Admission, DigestError> {
        match self {
            Some(gate) => gate.admit(job).await,
            None => Ok(Admission::Send),
        }
    }

    async fn admit_all(&self, jobs: &[&NotificationJob]) -> Vec<Result<Admission, DigestError>> {
        match self {
            Some(gate) => gate.admit_all(jobs).await,
            None => jobs.iter().map(|_| Ok(Admission::Send)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> fmn_lambda::Vars {
        fmn_lambda::Vars::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn flood_limit_from_vars() {
        assert_eq!(FloodLimit::from_vars(&vars(&[])), Ok(FloodLimit::default()));
        let set = FloodLimit::from_vars(&vars(&[
            ("FMN_FLOOD_MAX", "5"),
            ("FMN_FLOOD_WINDOW_SECS", "60"),
        ]));
        assert_eq!(
            set,
            Ok(FloodLimit {
                max: 5,
                window_secs: 60
            })
        );
        for bad in ["0", "-1", "many"] {
            let e = FloodLimit::from_vars(&vars(&[("FMN_FLOOD_MAX", bad)]));
            assert!(
                e.is_err_and(|e| e.to_string().contains("FMN_FLOOD_MAX")),
                "{bad}"
            );
        }
    }
}
