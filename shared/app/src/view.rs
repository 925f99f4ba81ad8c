//! Shaping records for responses (personal identifiers masked), and reading
//! a class the caller may see.

use serde_json::Value;
use store::KeyValue;
use store::classes::{self, ClassRecord};
use web::{Env, Principal, Problem};

/// The class `id`, if the caller may see it: 404 when there is none, 403
/// when it belongs to another institution or district.
pub fn visible_class<K: KeyValue>(
    env: &Env<'_, K>,
    id: &str,
    who: &Principal,
) -> Result<ClassRecord, Problem> {
    let r = classes::get(env.kv, id)?.ok_or_else(|| Problem::not_found("no class with this id"))?;
    if !who.may_see(&r.application.institution, &r.application.district) {
        return Err(Problem::forbidden(
            "the class belongs to another institution or district",
        ));
    }
    Ok(r)
}

/// Masks `id_number` and `mobile` members anywhere in `value`
/// (`530102********1234`, `138****1234`). Values that are not well-formed are blanked.
pub fn mask_personal(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match (k.as_str(), &*v) {
                    ("id_number", Value::String(s)) => {
                        *v = Value::String(
                            policy::ids::IdNumber::parse(s)
                                .map(|i| i.masked())
                                .unwrap_or_else(|_| "******".into()),
                        )
                    }
                    ("mobile", Value::String(s)) => {
                        *v = Value::String(
                            policy::ids::Mobile::parse(s)
                                .map(|m| m.masked())
                                .unwrap_or_else(|_| "****".into()),
                        )
                    }
                    _ => mask_personal(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_personal),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_identifiers() {
        let mut v = serde_json::json!({"roster": [{"id_number": "11010519491231002X", "mobile": "13800138000", "name": "张三"}]});
        mask_personal(&mut v);
        assert_eq!(v["roster"][0]["id_number"], "110105********002X");
        assert_eq!(v["roster"][0]["mobile"], "138****8000");
        assert_eq!(v["roster"][0]["name"], "张三");
    }
}
