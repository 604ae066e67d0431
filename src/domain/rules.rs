//! Field rules: what a recipient sees of each field of a report. An allowlist: every rule defaults
//! to `drop`. Each rule is written as a short word in the agreement file (`keep`, `drop`, `hour`,
//! `day`, `municipality`, `grid 500m`, `roles`, `pseudonymise`) and has an order from coarsest to
//! finest, which is how a narrowing, or a local agreement under a framework, is judged.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;

/// A JSON Schema for a type written as one word matching `pattern`.
macro_rules! word_schema {
    ($name:ident, $pattern:expr) => {
        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

pub(crate) use word_schema;

/// Declares a rule type that travels as its word and knows its fineness (0 = drop).
macro_rules! rule {
    ($(#[$meta:meta])* $name:ident, pattern = $pattern:literal, { $($variant:ident = $word:literal => $rank:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name {
            #[default]
            $($variant,)+
        }

        word_schema!($name, $pattern);

        impl $name {
            /// 0 for `drop`, higher for finer.
            pub fn fineness(self) -> u32 {
                match self {
                    $($name::$variant => $rank,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!("'{other}' is not a rule here; use one of: {}", [$($word),+].join(", "))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(rule: $name) -> Self {
                rule.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $word,)+
                })
            }
        }
    };
}

rule!(
    /// A text field: shown as written, or not at all.
    TextRule, pattern = "^(drop|keep)$", { Drop = "drop" => 0, Keep = "keep" => 1, }
);

rule!(
    /// A time: to the day, to the hour, as recorded, or not at all.
    TimeRule, pattern = "^(drop|day|hour|keep)$", { Drop = "drop" => 0, Day = "day" => 1, Hour = "hour" => 2, Keep = "keep" => 3, }
);

rule!(
    /// The site (a school, a shop): its kind only, its kind and name, or nothing.
    SiteRule, pattern = "^(drop|kind|keep)$", { Drop = "drop" => 0, Kind = "kind" => 1, Keep = "keep" => 2, }
);

rule!(
    /// The persons involved: nothing, their roles and how many, their roles with a pseudonym per
    /// person (a keyed hash of the name, the same within one agreement), or everything.
    PersonsRule, pattern = "^(drop|roles|pseudonymise|keep)$", { Drop = "drop" => 0, Roles = "roles" => 1, Pseudonymise = "pseudonymise" => 2, Keep = "keep" => 3, }
);

/// The location: the point, a grid cell of N metres (its centre), the municipality only, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LocationRule {
    #[default]
    Drop,
    Municipality,
    Grid {
        metres: u32,
    },
    Keep,
}

word_schema!(LocationRule, r"^(drop|municipality|grid [0-9]+m|keep)$");

/// The smallest and largest grid cells a rule may name.
pub const GRID_METRES: std::ops::RangeInclusive<u32> = 50..=100_000;

impl LocationRule {
    /// Whether `self` shows no more of a location than `other` does.
    pub fn no_finer_than(self, other: LocationRule) -> bool {
        use LocationRule::*;
        match (self, other) {
            (Drop, _) | (_, Keep) => true,
            (Municipality, Municipality | Grid { .. }) => true,
            (Grid { metres: a }, Grid { metres: b }) => a >= b,
            _ => false,
        }
    }
}

impl FromStr for LocationRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "drop" => return Ok(Self::Drop),
            "municipality" => return Ok(Self::Municipality),
            "keep" => return Ok(Self::Keep),
            _ => {}
        }
        let metres =
            s.strip_prefix("grid ").and_then(|m| m.trim().strip_suffix('m')).and_then(|m| m.trim().parse::<u32>().ok());
        match metres {
            Some(metres) if GRID_METRES.contains(&metres) => Ok(Self::Grid { metres }),
            Some(_) => Err(format!("a grid cell is {} to {} metres", GRID_METRES.start(), GRID_METRES.end())),
            None => Err(format!(
                "'{s}' is not a location rule; use drop, municipality, grid <N>m (such as grid 500m) or keep"
            )),
        }
    }
}

impl TryFrom<String> for LocationRule {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LocationRule> for String {
    fn from(rule: LocationRule) -> Self {
        rule.to_string()
    }
}

impl fmt::Display for LocationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Drop => f.write_str("drop"),
            Self::Municipality => f.write_str("municipality"),
            Self::Grid { metres } => write!(f, "grid {metres}m"),
            Self::Keep => f.write_str("keep"),
        }
    }
}

/// What a recipient sees of each field. Identity, category, severity, TLP, and whether the report
/// was retracted always travel: without them a recipient cannot file, judge or honour what it got.
/// The report's own timestamps follow the `observed_at` rule, so they cannot leak a finer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRules {
    #[serde(default)]
    pub title: TextRule,
    #[serde(default)]
    pub description: TextRule,
    #[serde(default)]
    pub status: TextRule,
    #[serde(default)]
    pub observed_at: TimeRule,
    #[serde(default)]
    pub location: LocationRule,
    /// The place name and street address.
    #[serde(default)]
    pub place: TextRule,
    #[serde(default)]
    pub site: SiteRule,
    #[serde(default)]
    pub persons: PersonsRule,
    /// Actions taken (interventions).
    #[serde(default)]
    pub actions: TextRule,
}

impl FieldRules {
    /// Refuses rule sets that contradict themselves: a place, address or site name next to a
    /// generalised location would give away the location the rule hides.
    pub fn check(&self, path: &str, errors: &mut ValidationErrors) {
        if self.location != LocationRule::Keep {
            errors.check(
                self.place == TextRule::Drop,
                format!("{path}.place"),
                format!("'keep' would reveal the address that location '{}' hides", self.location),
            );
            errors.check(
                self.site != SiteRule::Keep,
                format!("{path}.site"),
                format!("'keep' would reveal the site's name that location '{}' hides; use 'kind'", self.location),
            );
        }
    }

    /// The first field `self` shows more finely than `outer`, if any.
    pub fn finer_than(&self, outer: &FieldRules) -> Option<&'static str> {
        let checks = [
            ("title", self.title.fineness() > outer.title.fineness()),
            ("description", self.description.fineness() > outer.description.fineness()),
            ("status", self.status.fineness() > outer.status.fineness()),
            ("observed_at", self.observed_at.fineness() > outer.observed_at.fineness()),
            ("location", !self.location.no_finer_than(outer.location)),
            ("place", self.place.fineness() > outer.place.fineness()),
            ("site", self.site.fineness() > outer.site.fineness()),
            ("persons", self.persons.fineness() > outer.persons.fineness()),
            ("actions", self.actions.fineness() > outer.actions.fineness()),
        ];
        checks.into_iter().find(|(_, finer)| *finer).map(|(field, _)| field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_words_and_refuse_others() {
        assert_eq!("grid 500m".parse::<LocationRule>(), Ok(LocationRule::Grid { metres: 500 }));
        assert_eq!(LocationRule::Grid { metres: 500 }.to_string(), "grid 500m");
        assert!("grid 5m".parse::<LocationRule>().is_err());
        assert!("grid".parse::<LocationRule>().is_err());
        assert_eq!("hour".parse::<TimeRule>(), Ok(TimeRule::Hour));
        assert!("minute".parse::<TimeRule>().unwrap_err().contains("drop, day, hour, keep"));
    }

    #[test]
    fn coarser_grids_are_no_finer() {
        let g = |m| LocationRule::Grid { metres: m };
        assert!(g(1000).no_finer_than(g(500)));
        assert!(!g(500).no_finer_than(g(1000)));
        assert!(LocationRule::Municipality.no_finer_than(g(500)));
        assert!(!g(500).no_finer_than(LocationRule::Municipality));
        assert!(LocationRule::Drop.no_finer_than(LocationRule::Drop));
    }
}
