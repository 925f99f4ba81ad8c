//! Spin variables: application variables get values the way `spin up
//! --variable name=value` gives them (or their default); each component's
//! variables are `{{ name }}` templates over them, resolved when the host starts.

use crate::manifest::{App, ComponentSpec};
use anyhow::{Result, anyhow, bail};
use std::collections::{BTreeMap, HashMap};

enum Part<'a> {
    Lit(&'a str),
    Expr(&'a str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let (expr, tail) = after
                .split_once("}}")
                .ok_or_else(|| anyhow!("unmatched '{{{{' in template {template:?}"))?;
            parts.push(Part::Expr(expr.trim()));
            rest = tail;
        } else if let Some(idx) = rest.find("{{") {
            parts.push(Part::Lit(&rest[..idx]));
            rest = &rest[idx..];
        } else {
            parts.push(Part::Lit(rest));
            rest = "";
        }
    }
    Ok(parts)
}

/// The application variables a template refers to.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Expr(e) => Some(e.to_string()),
            Part::Lit(_) => None,
        })
        .collect())
}

/// Resolves a template against application variable values.
pub fn resolve_template(template: &str, values: &HashMap<String, String>) -> Result<String> {
    let mut out = String::new();
    for part in parse(template)? {
        match part {
            Part::Lit(l) => out.push_str(l),
            Part::Expr(e) => out.push_str(
                values
                    .get(e)
                    .ok_or_else(|| anyhow!("no value for variable {e:?}"))?,
            ),
        }
    }
    Ok(out)
}

/// Values of every application variable: given values first, then defaults.
/// A required variable without a value fails, as `spin up` fails.
pub fn app_values(app: &App, given: &BTreeMap<String, String>) -> Result<HashMap<String, String>> {
    for name in given.keys() {
        if !app.variables.contains_key(name) {
            bail!("variable {name:?} was given but no manifest declares it");
        }
    }
    let mut values = HashMap::new();
    for (name, var) in &app.variables {
        let value = match (given.get(name), &var.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => bail!("required variable {name:?} has no value"),
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// A component's variables, resolved.
pub fn component_values(
    spec: &ComponentSpec,
    app_values: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    spec.variables
        .iter()
        .map(|(name, template)| Ok((name.clone(), resolve_template(template, app_values)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_mix_literals_and_expressions() {
        let values: HashMap<String, String> = [("who".to_string(), "world".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            resolve_template("hello, {{ who }}!", &values).unwrap(),
            "hello, world!"
        );
        assert_eq!(resolve_template("{{who}}", &values).unwrap(), "world");
        assert_eq!(resolve_template("plain", &values).unwrap(), "plain");
        assert!(resolve_template("{{ nobody }}", &values).is_err());
        assert!(resolve_template("{{ who", &values).is_err());
        assert_eq!(
            template_references("a {{ x }} b {{y}}").unwrap(),
            vec!["x", "y"]
        );
    }
}
