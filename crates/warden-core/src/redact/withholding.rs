//! What is never stored: per (agent, tool), why its arguments and why its output are
//! withheld (kept only as an HMAC), from the scope cards and `[retention] not_stored`.

use std::collections::HashMap;
use std::sync::Arc;

/// What is not stored at all: per (agent, tool) — the tool by its name and by `server/name` —
/// why its arguments and why its output are withheld, if they are.
#[derive(Debug, Clone, Default)]
pub struct Withholding {
    /// (agent, tool) → why its arguments and its output are withheld.
    tools: HashMap<(String, String), Withheld>,
}

/// Why a tool's arguments, and why its output, are not stored (`None`: stored, redacted).
type Withheld = (Option<Arc<str>>, Option<Arc<str>>);

impl Withholding {
    /// From the cards' `store_arguments = false` / `store_output = false` grants, and from
    /// data classes that are never stored (`[retention] not_stored`): a call of a tool whose
    /// `data_classes`, or whose card's, include one keeps neither arguments nor output.
    pub fn from_cards<'a>(
        cards: impl IntoIterator<Item = &'a crate::ScopeCard>,
        not_stored: &[String],
    ) -> Self {
        let mut tools = HashMap::new();
        for card in cards {
            for t in &card.tools {
                let class = t
                    .data_classes
                    .iter()
                    .chain(&card.data_classes)
                    .find(|c| not_stored.contains(c))
                    .map(|c| -> Arc<str> {
                        format!("data class `{c}` is not stored ([retention] not_stored)").into()
                    });
                let args = (!t.store_arguments)
                    .then(|| Arc::from("store_arguments = false in the scope card"))
                    .or_else(|| class.clone());
                let output = (!t.store_output)
                    .then(|| Arc::from("store_output = false in the scope card"))
                    .or(class);
                if args.is_some() || output.is_some() {
                    let flags = (args, output);
                    tools.insert((card.id.clone(), t.name.clone()), flags.clone());
                    tools.insert((card.id.clone(), t.qualified().to_string()), flags);
                }
            }
        }
        Self { tools }
    }

    pub(super) fn flags(
        &self,
        agent: &str,
        tools: &[Option<&str>],
    ) -> (Option<&str>, Option<&str>) {
        if self.tools.is_empty() {
            return (None, None);
        }
        tools
            .iter()
            .flatten()
            .find_map(|t| self.tools.get(&(agent.to_string(), (*t).to_string())))
            .map_or((None, None), |(a, o)| (a.as_deref(), o.as_deref()))
    }
}
