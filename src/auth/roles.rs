//! The built-in roles every Tessera starts with. Templates ship roles of their own; these are the
//! sensible defaults before any template is installed. Administrators may edit all but the
//! administrator role, and delete none of them.

use serde_json::{Value, json};

/// `(name, label, description, permissions)`
pub fn builtin_roles() -> Vec<(&'static str, Value, &'static str, Value)> {
    vec![
        (
            "administrator",
            json!({"en": "Administrator", "zh-CN": "系统管理员"}),
            "Everything, everywhere.",
            json!({"admin": true}),
        ),
        (
            "sales_manager",
            json!({"en": "Sales manager", "zh-CN": "销售经理"}),
            "Works with the records of their department and the departments below it.",
            json!({
                "entities": {"*": {"create": "department_tree", "read": "department_tree",
                                    "update": "department_tree", "delete": "department_tree"}},
                "special": ["export", "import", "merge", "bulk"]
            }),
        ),
        (
            "sales_rep",
            json!({"en": "Sales representative", "zh-CN": "销售代表"}),
            "Creates and works with their own records; sees their department's.",
            json!({
                "entities": {"*": {"create": "own", "read": "department",
                                    "update": "own", "delete": "own"}},
                "special": ["export"]
            }),
        ),
        (
            "service_agent",
            json!({"en": "Service agent", "zh-CN": "客服专员"}),
            "Sees every record, changes their own.",
            json!({
                "entities": {"*": {"create": "own", "read": "all", "update": "own", "delete": "none"}}
            }),
        ),
        (
            "read_only",
            json!({"en": "Read only", "zh-CN": "只读"}),
            "Reads every record, changes nothing.",
            json!({"entities": {"*": {"read": "all"}}}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::permissions::Permissions;

    #[test]
    fn builtin_roles_parse() {
        for (name, _, _, permissions) in builtin_roles() {
            assert!(Permissions::parse(&permissions).is_ok(), "{name}");
        }
    }
}
