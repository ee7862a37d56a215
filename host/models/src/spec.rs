//! [`ModelSpec`]: the one-line model choice (`openai:gpt-4.1`, `scripted:turns.toml`, …) that
//! workflows and the CLI accept, parsed with errors that show the form to write instead.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which provider and model to use. Serialized as its spec string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ModelSpec {
    /// `openai:<model>` — OpenAI Chat Completions.
    OpenAi { model: String },
    /// `anthropic:<model>` — Anthropic Messages.
    Anthropic { model: String },
    /// `openai-compatible:<model>@<base-url>` — Ollama, llama.cpp server, vLLM, …
    OpenAiCompatible { model: String, base_url: String },
    /// `scripted:<path>` — replay of a TOML file of turns; relative to the workflow folder.
    Scripted { path: PathBuf },
}

const FORMS: &str = "expected one of `openai:<model>`, `anthropic:<model>`, \
    `openai-compatible:<model>@<http(s) base URL>`, `scripted:<path to turns.toml>`";

impl FromStr for ModelSpec {
    type Err = ModelError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| ModelError::InvalidSpec { input: input.to_string(), reason };
        let spec = input.trim();
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Err(invalid(format!(
                "a URL alone does not say which model to use; for an OpenAI-compatible server write \
                 `openai-compatible:<model>@{spec}` (e.g. `openai-compatible:llama3.1@http://127.0.0.1:11434/v1`)"
            )));
        }
        let Some((prefix, rest)) = spec.split_once(':') else {
            return Err(invalid(format!("missing the provider prefix (did you mean `openai:{spec}`?); {FORMS}")));
        };
        let rest = rest.trim();
        let need = |what: &str| {
            if rest.is_empty() { Err(invalid(format!("missing the {what} after `{prefix}:`"))) } else { Ok(()) }
        };
        match prefix {
            "openai" => {
                need("model name")?;
                Ok(ModelSpec::OpenAi { model: rest.to_string() })
            }
            "anthropic" => {
                need("model name")?;
                Ok(ModelSpec::Anthropic { model: rest.to_string() })
            }
            "openai-compatible" => parse_compatible(rest).map_err(invalid),
            "scripted" => {
                need("script path")?;
                Ok(ModelSpec::Scripted { path: PathBuf::from(rest) })
            }
            other => Err(invalid(format!("unknown provider `{other}`; {FORMS}"))),
        }
    }
}

/// `<model>@<url>`. Model names may contain `:` and `/` (`hf.co/org/m:Q4_K_M`), so the split is
/// at the `@` that starts the URL, not at the first `@`.
fn parse_compatible(rest: &str) -> Result<ModelSpec, String> {
    let at = ["@http://", "@https://"].iter().filter_map(|marker| rest.find(marker)).min();
    let Some(at) = at else {
        return Err("expected `openai-compatible:<model>@<http(s) base URL>`, e.g. \
             `openai-compatible:llama3.1@http://127.0.0.1:11434/v1`"
            .to_string());
    };
    let (model, base_url) = (rest[..at].trim(), rest[at + 1..].trim());
    if model.is_empty() {
        return Err(format!("missing the model name before `@{base_url}`"));
    }
    check_base_url(base_url)?;
    Ok(ModelSpec::OpenAiCompatible { model: model.to_string(), base_url: base_url.to_string() })
}

/// An http(s) URL with a host, no query or fragment (paths are appended to it).
pub(crate) fn check_base_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_string());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are not accepted; use the API key variable".to_string());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("a base URL cannot have a query or fragment".to_string());
    }
    Ok(())
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::OpenAi { model } => write!(f, "openai:{model}"),
            ModelSpec::Anthropic { model } => write!(f, "anthropic:{model}"),
            ModelSpec::OpenAiCompatible { model, base_url } => write!(f, "openai-compatible:{model}@{base_url}"),
            ModelSpec::Scripted { path } => write!(f, "scripted:{}", path.display()),
        }
    }
}

impl TryFrom<String> for ModelSpec {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ModelSpec> for String {
    fn from(spec: ModelSpec) -> String {
        spec.to_string()
    }
}
