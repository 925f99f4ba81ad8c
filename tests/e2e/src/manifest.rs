//! The parts of a Spin 2 manifest (`spin.toml`) the harness needs: HTTP
//! triggers, components with their sources, key-value stores, variables and
//! allowed outbound hosts. Several manifests merge into one application.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One manifest file as written.
#[derive(Debug, Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    #[serde(default)]
    variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: String,
}

/// `route = "/path"` or `route = { private = true }` (reachable only by
/// service chaining, which this host does not offer: no route).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

/// An application variable (`[variables]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct AppVariable {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// An `[[trigger.http]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    build: Option<toml::Value>,
}

/// A component of the merged application.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    pub id: String,
    /// `source` as written in the manifest (relative to the manifest's directory).
    pub source: String,
    /// The manifest's directory.
    pub base_dir: PathBuf,
    pub key_value_stores: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variable name → template (`"{{ app_var }}"`, literal text, or a mix).
    pub variables: BTreeMap<String, String>,
    /// Environment variables the component sees.
    pub environment: BTreeMap<String, String>,
    /// The `-p <package>` of the component's `[component.X.build] command`, if it is a cargo build.
    pub cargo_package: Option<String>,
}

/// One or more manifests merged: variables, routes in declaration order, components.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub variables: BTreeMap<String, AppVariable>,
    pub triggers: Vec<HttpTrigger>,
    pub components: BTreeMap<String, ComponentSpec>,
}

impl App {
    /// Parses and merges manifests in order. The same component id or variable
    /// may appear in two manifests only if identical.
    pub fn load(paths: &[PathBuf]) -> Result<App> {
        let mut app = App::default();
        for path in paths {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading manifest {}", path.display()))?;
            let base_dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            app.merge(&text, &base_dir)
                .with_context(|| format!("in manifest {}", path.display()))?;
        }
        app.validate()?;
        Ok(app)
    }

    /// Merges one manifest's text into this application.
    pub fn merge(&mut self, text: &str, base_dir: &Path) -> Result<()> {
        let raw: RawManifest = toml::from_str(text).context("parsing manifest")?;
        if raw.spin_manifest_version != 2 {
            bail!("spin_manifest_version must be 2");
        }
        for (name, var) in raw.variables {
            validate_variable_name(&name)?;
            if var.required && var.default.is_some() {
                bail!("variable {name:?}: required variables cannot have a default");
            }
            if !var.required && var.default.is_none() {
                bail!("variable {name:?} needs `required = true` or a default");
            }
            match self.variables.get(&name) {
                Some(existing) if existing != &var => {
                    bail!("variable {name:?} declared differently in two manifests")
                }
                _ => {
                    self.variables.insert(name, var);
                }
            }
        }
        for (id, raw) in raw.component {
            let cargo_package = raw.build.as_ref().and_then(cargo_package_of_build);
            let spec = ComponentSpec {
                id: id.clone(),
                source: raw.source,
                base_dir: base_dir.to_path_buf(),
                key_value_stores: raw.key_value_stores,
                allowed_outbound_hosts: raw.allowed_outbound_hosts,
                variables: raw.variables,
                environment: raw.environment,
                cargo_package,
            };
            if let Some(existing) = self.components.get(&id)
                && existing != &spec
            {
                bail!("component {id:?} declared differently in two manifests");
            }
            self.components.insert(id, spec);
        }
        for t in raw.trigger.http {
            match t.route {
                RawRoute::Path(route) => self.triggers.push(HttpTrigger {
                    route,
                    component: t.component,
                }),
                RawRoute::Private { private: true } => {}
                RawRoute::Private { private: false } => bail!(
                    "route must be a string pattern or `{{ private = true }}` (component {:?})",
                    t.component
                ),
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        for t in &self.triggers {
            if !self.components.contains_key(&t.component) {
                bail!(
                    "route {:?} names component {:?}, which no manifest defines",
                    t.route,
                    t.component
                );
            }
        }
        for c in self.components.values() {
            for (name, template) in &c.variables {
                validate_variable_name(name).with_context(|| format!("component {:?}", c.id))?;
                for var in crate::variables::template_references(template)? {
                    if !self.variables.contains_key(&var) {
                        bail!(
                            "component {:?} variable {name:?} refers to unknown application variable {var:?}",
                            c.id
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// Spin's rule for variable names: lowercase ASCII letters, digits and
/// underscores, starting with a letter, no double or trailing underscore.
pub fn validate_variable_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        bail!("invalid variable name {name:?}")
    }
}

/// Finds `-p NAME` / `--package NAME` in a `cargo build` command.
fn cargo_package_of_build(build: &toml::Value) -> Option<String> {
    let command = build.get("command")?.as_str()?;
    let words: Vec<&str> = command.split_whitespace().collect();
    if !words.contains(&"cargo") {
        return None;
    }
    words
        .windows(2)
        .find(|w| w[0] == "-p" || w[0] == "--package")
        .map(|w| w[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"
spin_manifest_version = 2
[application]
name = "a"
[variables]
secret = { required = true }
mode = { default = "test" }
[[trigger.http]]
route = "/a/..."
component = "a"
[component.a]
source = "target/wasm32-wasip2/release/a.wasm"
key_value_stores = ["default"]
[component.a.variables]
secret = "{{ secret }}"
label = "mode={{ mode }}"
[component.a.build]
command = "cargo build --target wasm32-wasip2 --release -p a-crate"
"#;

    const B: &str = r#"
spin_manifest_version = 2
[application]
name = "b"
[[trigger.http]]
route = "/b"
component = "b"
[[trigger.http]]
route = { private = true }
component = "b"
[component.b]
source = "b.wasm"
"#;

    #[test]
    fn manifests_merge_in_order() {
        let mut app = App::default();
        app.merge(A, Path::new("/x")).unwrap();
        app.merge(B, Path::new("/y")).unwrap();
        app.validate().unwrap();
        assert_eq!(app.triggers.len(), 2);
        assert_eq!(app.triggers[1].route, "/b");
        let a = &app.components["a"];
        assert_eq!(a.cargo_package.as_deref(), Some("a-crate"));
        assert_eq!(a.variables["label"], "mode={{ mode }}");
        assert_eq!(app.components["b"].base_dir, Path::new("/y"));
    }

    #[test]
    fn a_route_to_an_unknown_component_is_rejected() {
        let mut app = App::default();
        app.merge(
            "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"nope\"\n",
            Path::new("."),
        )
        .unwrap();
        assert!(app.validate().is_err());
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(validate_variable_name("jwt_secret").is_ok());
        assert!(validate_variable_name("a1").is_ok());
        assert!(validate_variable_name("Jwt").is_err());
        assert!(validate_variable_name("a__b").is_err());
        assert!(validate_variable_name("_a").is_err());
        assert!(validate_variable_name("a-b").is_err());
    }
}
