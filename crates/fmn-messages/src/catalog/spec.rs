//! The raw form of a catalog file, as written (documented in `catalog/README.md`).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSpec {
    /// Which bus generation the entries describe.
    pub(super) generation: GenerationSpec,
    /// The application name the entries' messages carry (fedora-messaging: the schema's
    /// `app_name`); entries may override it.
    #[serde(default)]
    pub(super) app: Option<String>,
    /// True for the generic entries used when nothing more specific matches.
    #[serde(default)]
    pub(super) fallback: bool,
    /// fedmsg files: the fedmsg.meta processor the entries mirror
    /// (`fedmsg_meta_fedora_infrastructure.bodhi:BodhiProcessor`); an entry may name its own.
    #[serde(default)]
    pub(super) mirrors: Option<String>,
    #[serde(default, rename = "entry")]
    pub(super) entries: Vec<EntrySpec>,
    /// Named values computed once per message for the file's entries (`$name`), in order.
    #[serde(default, rename = "var")]
    pub(super) vars: Vec<VarSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VarSpec {
    pub(super) name: String,
    /// An expression: the var holds its values (JSON values can be walked: `$name/a/b`).
    #[serde(default)]
    pub(super) expr: Option<String>,
    /// Or a text (one template or cases): the var holds the rendered text.
    #[serde(default)]
    pub(super) text: Option<TextSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum GenerationSpec {
    Fedmsg,
    FedoraMessaging,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntrySpec {
    /// Glob (`*` crosses dots) over the topic without its `org.<domain>.<env>.` prefix.
    pub(super) topic: String,
    /// fedora-messaging schema names (the `fedora_messaging_schema` header) this entry is for.
    #[serde(default)]
    pub(super) schema: Vec<String>,
    #[serde(default)]
    pub(super) when: Option<String>,
    /// fedmsg entries: the fedmsg.meta processor this entry mirrors, when not the file's.
    #[serde(default)]
    pub(super) mirrors: Option<String>,
    #[serde(default)]
    pub(super) app: Option<String>,
    #[serde(default)]
    pub(super) agent: Option<String>,
    /// A condition under which `agent` applies (otherwise the message has no agent).
    #[serde(default)]
    pub(super) agent_when: Option<String>,
    #[serde(default)]
    /// The facts, as expressions; a fact left out is, for a fedora-messaging message, read
    /// from its headers (an empty list says the class computes none).
    pub(super) usernames: Option<Vec<String>>,
    #[serde(default)]
    pub(super) rpms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) containers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) modules: Option<Vec<String>>,
    #[serde(default)]
    pub(super) flatpaks: Option<Vec<String>>,
    #[serde(default)]
    pub(super) groups: Option<Vec<String>>,
    #[serde(default)]
    pub(super) title: Option<TextSpec>,
    #[serde(default)]
    pub(super) summary: Option<TextSpec>,
    #[serde(default)]
    pub(super) link: Option<TextSpec>,
    #[serde(default)]
    pub(super) long_form: Option<TextSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum TextSpec {
    One(String),
    Cases(Vec<CaseSpec>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CaseSpec {
    #[serde(default)]
    pub(super) when: Option<String>,
    pub(super) text: String,
}
