//! RSS 2.0 and Atom 1.0 rendering.

use atom_syndication as atom_xml;
use chrono::{DateTime, FixedOffset, Utc};

use crate::FeedItem;

/// Keeps only characters XML 1.0 allows (the writers escape markup, but a NUL or an escape
/// character in a bus message would make the whole document unparseable).
fn xml_text(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        })
        .collect()
}

fn time(secs: i64) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .fixed_offset()
}

fn description(item: &FeedItem) -> String {
    let mut text = xml_text(&item.summary);
    if !item.filters.is_empty() {
        text.push_str(&format!(
            " (your filter(s): {})",
            xml_text(&item.filters.join(", "))
        ));
    }
    text
}

fn newest(items: &[FeedItem]) -> i64 {
    items.iter().map(|i| i.published).max().unwrap_or(0)
}

/// An RSS 2.0 document titled `title`, served at `self_url`, listing `items` in order.
pub fn rss(title: &str, self_url: &str, items: &[FeedItem]) -> String {
    // The channel's date is the newest item's; an empty feed says 1970.
    let updated = time(newest(items)).to_rfc2822();
    let items = items
        .iter()
        .map(|item| rss::Item {
            title: Some(xml_text(&item.title)),
            link: item.link.as_deref().map(xml_text),
            description: Some(description(item)),
            guid: Some(rss::Guid {
                value: format!("fmn:{}", xml_text(&item.id)),
                permalink: false,
            }),
            pub_date: Some(time(item.published).to_rfc2822()),
            categories: vec![rss::Category {
                name: xml_text(&item.app),
                domain: None,
            }],
            ..Default::default()
        })
        .collect();
    let channel = rss::Channel {
        title: xml_text(title),
        link: xml_text(self_url),
        description: xml_text(title),
        last_build_date: Some(updated),
        generator: Some("fmn".into()),
        items,
        ..Default::default()
    };
    channel.to_string()
}

/// An Atom 1.0 document titled `title`, served at `self_url`, listing `items` in order.
pub fn atom(title: &str, self_url: &str, items: &[FeedItem]) -> String {
    let self_url = xml_text(self_url);
    let entries = items
        .iter()
        .map(|item| atom_xml::Entry {
            id: format!("urn:fmn:{}", xml_text(&item.id)),
            title: atom_xml::Text::plain(xml_text(&item.title)),
            updated: time(item.published),
            published: Some(time(item.published)),
            summary: Some(atom_xml::Text::plain(description(item))),
            links: item
                .link
                .iter()
                .map(|href| atom_xml::Link {
                    href: xml_text(href),
                    rel: "alternate".into(),
                    ..Default::default()
                })
                .collect(),
            categories: vec![atom_xml::Category {
                term: xml_text(&item.app),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let feed = atom_xml::Feed {
        title: atom_xml::Text::plain(xml_text(title)),
        id: self_url.clone(),
        updated: time(newest(items)),
        authors: vec![atom_xml::Person {
            name: "fmn".into(),
            ..Default::default()
        }],
        links: vec![atom_xml::Link {
            href: self_url,
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Default::default()
        }],
        entries,
        ..Default::default()
    };
    feed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, title: &str, published: i64) -> FeedItem {
        FeedItem {
            id: id.into(),
            title: title.into(),
            summary: title.into(),
            link: Some(format!(
                "https://bodhi.fedoraproject.org/updates/{id}?a=1&b=2"
            )),
            published,
            app: "bodhi".into(),
            topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
            filters: vec!["my <updates>".into()],
        }
    }

    fn items() -> Vec<FeedItem> {
        vec![
            item(
                "m2",
                "ralph commented on <b>fedmsg</b> & \"friends\"",
                1_700_000_100,
            ),
            item("m1", "evil\u{0}\u{1b}[31m title\r\n", 1_700_000_000),
        ]
    }

    #[test]
    fn rss_parses_back_with_every_item() {
        let xml = rss(
            "alice's notifications",
            "https://fmn.example/feeds/t/rss.xml",
            &items(),
        );
        let feed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
        assert_eq!(feed.feed_type, feed_rs::model::FeedType::RSS2);
        assert_eq!(feed.entries.len(), 2);
        let first = &feed.entries[0];
        assert_eq!(
            first.title.as_ref().unwrap().content,
            "ralph commented on <b>fedmsg</b> & \"friends\""
        );
        assert_eq!(
            first.links[0].href,
            "https://bodhi.fedoraproject.org/updates/m2?a=1&b=2"
        );
        assert_eq!(first.published.unwrap().timestamp(), 1_700_000_100);
        assert!(
            feed.entries[1]
                .title
                .as_ref()
                .unwrap()
                .content
                .starts_with("evil[31m title")
        );
    }

    #[test]
    fn atom_parses_back_with_every_item() {
        let xml = atom(
            "alice's notifications",
            "https://fmn.example/feeds/t/atom.xml",
            &items(),
        );
        let feed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
        assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
        assert_eq!(feed.title.unwrap().content, "alice's notifications");
        assert_eq!(feed.updated.unwrap().timestamp(), 1_700_000_100);
        assert_eq!(feed.entries.len(), 2);
        assert_eq!(feed.entries[0].id, "urn:fmn:m2");
        assert_eq!(
            feed.entries[0].summary.as_ref().unwrap().content,
            "ralph commented on <b>fedmsg</b> & \"friends\" (your filter(s): my <updates>)"
        );
        assert_eq!(
            feed.entries[1].links[0].href,
            "https://bodhi.fedoraproject.org/updates/m1?a=1&b=2"
        );
    }

    #[test]
    fn empty_feeds_are_valid() {
        for xml in [
            rss("t", "https://x/rss.xml", &[]),
            atom("t", "https://x/atom.xml", &[]),
        ] {
            let feed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
            assert!(feed.entries.is_empty());
        }
    }
}
