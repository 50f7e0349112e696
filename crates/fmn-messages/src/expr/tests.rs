use serde_json::{Value, json};

use super::{Cond, Ctx, Expr, Template};

fn ctx(body: &Value) -> Ctx<'_, '_> {
    Ctx {
        body,
        topic: "org.fedoraproject.prod.bodhi.update.comment",
        short: "bodhi.update.comment",
        agent: Some("alice"),
        key: None,
        vars: &[],
    }
}

fn render(t: &str, body: &Value) -> Option<String> {
    Template::parse(t).unwrap().render(&ctx(body))
}

#[test]
fn each_renders_a_template_per_entry() {
    let body = json!({"d": {"b": {"x": [1, 2], "y": []}, "a": {"x": [], "y": [3]},
                            "c": {"x": [], "y": []}},
                      "l": [{"n": "p"}, {"m": 1}, {"n": "q"}]});
    assert_eq!(
        render(
            "{/d|each('{@key}: +{/x|count}/-{/y|count}')|reject('\\+0/-0$')|join('; ')}",
            &body
        )
        .as_deref(),
        Some("a: +0/-1; b: +2/-0")
    );
    // Elements for which the template fails are dropped; no `@key` outside `each`.
    assert_eq!(
        render("{/l|each('<{/n}>')}", &body).as_deref(),
        Some("<p>, <q>")
    );
    assert_eq!(render("{@key}", &body), None);
}

#[test]
fn templates_paths_and_filters() {
    let body = json!({"a": {"b": "x@fedoraproject.org", "n": 3},
                      "list": ["p-1.0-1.fc40", "q-2-3"], "s": "a, b,c", "nul": null});
    assert_eq!(render("{/a/b|user}!", &body).as_deref(), Some("x!"));
    assert_eq!(render("{/list/*|nvr_name}", &body).as_deref(), Some("p, q"));
    assert_eq!(
        render("{/list|join(' ')}", &body).as_deref(),
        Some("p-1.0-1.fc40 q-2-3")
    );
    assert_eq!(render("{/s|split(',')|last}", &body).as_deref(), Some("c"));
    assert_eq!(render("{/nul}", &body), None);
    assert_eq!(render("{/nul|py}", &body).as_deref(), Some("None"));
    assert_eq!(
        render("{/missing || @agent}", &body).as_deref(),
        Some("alice")
    );
    assert_eq!(
        render("{@seg(-1)} {@seg(0)}", &body).as_deref(),
        Some("comment bodhi")
    );
    assert_eq!(
        render("{/a/n|map(3:three, _:many)}", &body).as_deref(),
        Some("three")
    );
    assert_eq!(render("{{{/a/n}}}", &body).as_deref(), Some("{3}"));
    assert_eq!(render("{/list|count}", &body).as_deref(), Some("2"));
}

#[test]
fn conditions() {
    let body = json!({"new": 1, "s": "open", "e": []});
    let holds = |c: &str| Cond::parse(c).unwrap().holds(&ctx(&body));
    assert!(holds("/new == 1"));
    assert!(holds("/new == 1 && /s ~ '^op'"));
    assert!(!holds("/e"));
    assert!(holds("!/e"));
    assert!(holds("/s != closed"));
    assert!(!holds("/missing"));
}

#[test]
fn parse_errors_are_reported() {
    assert!(Template::parse("{/a").is_err());
    assert!(Expr::parse("/a|nope").is_err());
    assert!(Cond::parse("/a ==").is_err());
}

#[test]
fn where_and_where_not_split_values_by_a_field() {
    let body = json!({"pkgs": [{"name": "a", "ns": "rpms"}, {"name": "b", "ns": "docker"},
                               {"name": "c"}]});
    let names = |e: &str| {
        let mut out = Vec::new();
        Expr::parse(e).unwrap().strings(&ctx(&body), &mut out);
        out
    };
    assert_eq!(names("/pkgs|where(/ns, '^rpms$')|get(/name)"), ["a"]);
    // `where_not`: the text there does not match, or there is none (Python's `else`).
    assert_eq!(
        names("/pkgs|where_not(/ns, '^rpms$')|get(/name)"),
        ["b", "c"]
    );
    assert_eq!(names("/pkgs|where_not(/ns, '')|get(/name)"), ["c"]);
}
