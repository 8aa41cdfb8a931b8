//! Tests of the schema checks: each keyword on small schemas, and the generated CRD.

use super::*;

/// The keywords `schema` (or a schema under it) sets that [`validate`] does not check, each
/// with the path of the schema node, as `spec.source.sqlServer: uniqueItems`.
fn keywords_outside(schema: &JSONSchemaProps) -> Vec<String> {
    let mut found = Vec::new();
    collect_outside(schema, "", &mut found);
    found
}

fn collect_outside(s: &JSONSchemaProps, path: &str, found: &mut Vec<String>) {
    let set = [
        ("allOf", s.all_of.is_some()),
        ("anyOf", s.any_of.is_some()),
        ("oneOf", s.one_of.is_some()),
        ("not", s.not.is_some()),
        ("multipleOf", s.multiple_of.is_some()),
        ("uniqueItems", s.unique_items == Some(true)),
        ("minProperties", s.min_properties.is_some()),
        ("maxProperties", s.max_properties.is_some()),
        ("patternProperties", s.pattern_properties.is_some()),
        ("dependencies", s.dependencies.is_some()),
        ("additionalItems", s.additional_items.is_some()),
        ("$ref", s.ref_path.is_some()),
        ("x-kubernetes-list-type", s.x_kubernetes_list_type.is_some()),
        ("x-kubernetes-map-type", s.x_kubernetes_map_type.is_some()),
        (
            "x-kubernetes-list-map-keys",
            s.x_kubernetes_list_map_keys.is_some(),
        ),
        ("format", !format_is_checked(s)),
    ];
    for (keyword, _) in set.iter().filter(|(_, on)| *on) {
        found.push(format!("{path}: {keyword}"));
    }
    for (key, prop) in s.properties.iter().flatten() {
        collect_outside(prop, &child(path, key), found);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(each)) = &s.additional_properties {
        collect_outside(each, &format!("{path}[*]"), found);
    }
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(each)) => {
            collect_outside(each, &format!("{path}[*]"), found);
        }
        Some(JSONSchemaPropsOrArray::Schemas(list)) => {
            for (i, each) in list.iter().enumerate() {
                collect_outside(each, &format!("{path}[{i}]"), found);
            }
        }
        None => {}
    }
}

/// Integer formats are checked; a string format (date-time, ...) is not.
fn format_is_checked(s: &JSONSchemaProps) -> bool {
    match s.format.as_deref() {
        None => true,
        Some("int32" | "int64") => s.type_.as_deref() == Some("integer"),
        Some(_) => false,
    }
}

fn schema(json: Value) -> JSONSchemaProps {
    serde_json::from_value(json).unwrap()
}

/// Every message, as `path: detail`.
fn refusals(s: &JSONSchemaProps, doc: Value) -> Vec<String> {
    validate(s, &doc).iter().map(ToString::to_string).collect()
}

fn object_of(props: Value) -> JSONSchemaProps {
    schema(serde_json::json!({"type": "object", "properties": props}))
}

#[test]
fn a_wrong_type_names_the_field_both_types_and_blocks_the_rules() {
    let s = object_of(serde_json::json!({"suspend": {"type": "boolean"}}));
    let errors = validate(&s, &serde_json::json!({"suspend": "yes"}));
    assert_eq!(
        errors[0].to_string(),
        "suspend: Invalid value: \"string\": suspend in body must be of type boolean: \
         \"string\""
    );
    assert!(errors[0].blocks_rules);
    assert_eq!(errors.len(), 1);
}

#[test]
fn integers_take_integral_floats_and_numbers_take_integers() {
    let s = object_of(serde_json::json!({
        "n": {"type": "integer"}, "x": {"type": "number"}
    }));
    assert!(refusals(&s, serde_json::json!({"n": 3.0, "x": 3})).is_empty());
    assert_eq!(
        refusals(&s, serde_json::json!({"n": 3.5})),
        ["n: Invalid value: \"number\": n in body must be of type integer: \"number\""]
    );
}

#[test]
fn a_missing_required_field_is_refused_unless_a_default_fills_it() {
    let s = schema(serde_json::json!({
        "type": "object",
        "required": ["a", "b", "c"],
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "default": "x"},
            "c": {"type": "object", "properties": {}, "required": ["d"]}
        }
    }));
    assert_eq!(
        refusals(&s, serde_json::json!({"c": {}})),
        ["c.d: Required value", "a: Required value"]
    );
}

#[test]
fn a_null_where_the_schema_allows_none_counts_as_absent() {
    let s = schema(serde_json::json!({
        "type": "object",
        "required": ["a", "n"],
        "properties": {
            "a": {"type": "string"},
            "n": {"type": "string", "nullable": true},
            "o": {"type": "string", "maxLength": 1},
            "l": {"type": "array", "items": {"type": "string"}}
        }
    }));
    let doc = serde_json::json!({"a": null, "n": null, "o": null, "l": ["x", null]});
    assert_eq!(
        refusals(&s, doc),
        [
            "l[1]: Invalid value: \"null\": l[1] in body must be of type string: \"null\"",
            "a: Required value"
        ]
    );
}

#[test]
fn unknown_fields_are_refused_at_any_depth_with_their_path() {
    let s = schema(serde_json::json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "target": {"type": "object", "properties": {"dialect": {"type": "string"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "list": {"type": "array", "items": {"type": "object", "properties": {}}}
            }}
        }
    }));
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "K", "metadata": {"name": "m"},
        "spec": {
            "target": {"dialct": "duckdb"},
            "labels": {"any": "thing", "n": 1},
            "free": {"anything": {"at": "all"}},
            "list": [{}, {"metadata": {}}]
        },
        "extra": true
    });
    assert_eq!(
        refusals(&s, doc),
        [
            "extra: unknown field \"extra\"",
            "spec.labels.n: Invalid value: \"integer\": spec.labels.n in body must be of \
             type string: \"integer\"",
            "spec.list[1].metadata: unknown field \"spec.list[1].metadata\"",
            "spec.target.dialct: unknown field \"spec.target.dialct\"",
        ]
    );
}

#[test]
fn additional_properties_false_refuses_every_undeclared_key() {
    let s = schema(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": false
    }));
    assert_eq!(
        refusals(&s, serde_json::json!({"a": "x", "b": "y"})),
        ["b: unknown field \"b\""]
    );
}

#[test]
fn string_lengths_count_characters_not_bytes() {
    let s = object_of(serde_json::json!({
        "s": {"type": "string", "minLength": 1, "maxLength": 3}
    }));
    assert!(refusals(&s, serde_json::json!({"s": "ééé"})).is_empty());
    assert_eq!(
        refusals(&s, serde_json::json!({"s": "abcd"})),
        ["s: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        refusals(&s, serde_json::json!({"s": ""})),
        ["s: Invalid value: \"\": s in body should be at least 1 chars long"]
    );
}

#[test]
fn a_pattern_searches_the_value_unanchored_unless_it_anchors_itself() {
    let s = object_of(serde_json::json!({
        "a": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
        "b": {"type": "string", "pattern": "[0-9]"}
    }));
    assert!(refusals(&s, serde_json::json!({"a": "ok_1", "b": "x1y"})).is_empty());
    assert_eq!(
        refusals(&s, serde_json::json!({"a": "My-Project", "b": "xy"})),
        [
            "a: Invalid value: \"My-Project\": a in body should match '^[a-z_][a-z0-9_]*$'",
            "b: Invalid value: \"xy\": b in body should match '[0-9]'"
        ]
    );
}

#[test]
fn bounds_refuse_past_the_limit_and_exclusive_bounds_at_it() {
    let s = object_of(serde_json::json!({
        "port": {"type": "integer", "minimum": 1.0, "maximum": 65535.0},
        "ratio": {"type": "number", "minimum": 0.0, "exclusiveMinimum": true,
                  "maximum": 0.5, "exclusiveMaximum": true}
    }));
    assert!(refusals(&s, serde_json::json!({"port": 65535, "ratio": 0.25})).is_empty());
    assert_eq!(
        refusals(&s, serde_json::json!({"port": 70000, "ratio": 0.5})),
        [
            "port: Invalid value: 70000: port in body should be less than or equal to 65535",
            "ratio: Invalid value: 0.5: ratio in body should be less than 0.5"
        ]
    );
    assert_eq!(
        refusals(&s, serde_json::json!({"port": 0, "ratio": 0})),
        [
            "port: Invalid value: 0: port in body should be greater than or equal to 1",
            "ratio: Invalid value: 0: ratio in body should be greater than 0"
        ]
    );
}

#[test]
fn integer_formats_bound_the_value_to_the_type() {
    let s = object_of(serde_json::json!({
        "a": {"type": "integer", "format": "int32"},
        "b": {"type": "integer", "format": "int64"}
    }));
    let edge = serde_json::json!({"a": i32::MAX, "b": i64::MIN});
    assert!(refusals(&s, edge).is_empty());
    assert_eq!(
        refusals(
            &s,
            serde_json::json!({"a": 2_147_483_648_u64, "b": u64::MAX})
        ),
        [
            "a: Invalid value: 2147483648: a in body must be within the range of int32",
            "b: Invalid value: 18446744073709551615: b in body must be within the range of \
             int64"
        ]
    );
    assert_eq!(
        refusals(&s, serde_json::json!({"a": -2_147_483_649_i64, "b": 1e19})),
        [
            "a: Invalid value: -2147483649: a in body must be within the range of int32",
            "b: Invalid value: 1e+19: b in body must be within the range of int64"
        ]
    );
}

#[test]
fn a_value_outside_the_enum_lists_the_supported_ones_and_blocks_the_rules() {
    let s = object_of(serde_json::json!({
        "dialect": {"type": "string", "enum": ["duckdb", "postgres"]}
    }));
    assert!(refusals(&s, serde_json::json!({"dialect": "postgres"})).is_empty());
    let errors = validate(&s, &serde_json::json!({"dialect": "oracle"}));
    assert_eq!(
        errors[0].to_string(),
        "dialect: Unsupported value: \"oracle\": supported values: \"duckdb\", \"postgres\""
    );
    assert!(errors[0].blocks_rules);
}

#[test]
fn item_counts_are_bounded_and_each_item_is_checked_at_its_index() {
    let s = object_of(serde_json::json!({
        "l": {"type": "array", "minItems": 1, "maxItems": 2,
              "items": {"type": "string", "maxLength": 2}}
    }));
    assert_eq!(
        refusals(&s, serde_json::json!({"l": ["a", "abc", "b"]})),
        [
            "l: Too many: 3: must have at most 2 items",
            "l[1]: Too long: may not be more than 2 bytes"
        ]
    );
    assert_eq!(
        refusals(&s, serde_json::json!({"l": []})),
        ["l: Invalid value: 0: l in body should have at least 1 items"]
    );
    assert_eq!(
        refusals(&s, serde_json::json!({"l": "a"})),
        ["l: Invalid value: \"string\": l in body must be of type array: \"string\""]
    );
}

#[test]
fn int_or_string_takes_either_and_nothing_else() {
    let s = object_of(serde_json::json!({
        "q": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}}
    }));
    assert!(refusals(&s, serde_json::json!({"q": {"cpu": 1, "memory": "1Gi"}})).is_empty());
    assert_eq!(
        refusals(&s, serde_json::json!({"q": {"cpu": true}})),
        [
            "q.cpu: Invalid value: \"boolean\": q.cpu in body must be of type \
             integer,string: \"boolean\""
        ]
    );
}

#[test]
fn an_embedded_resource_names_its_kind_and_may_carry_metadata() {
    let s = object_of(serde_json::json!({
        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                     "properties": {"spec": {"type": "object", "properties": {}}}}
    }));
    let whole = serde_json::json!({"template": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}
    }});
    assert!(refusals(&s, whole).is_empty());
    assert_eq!(
        refusals(
            &s,
            serde_json::json!({"template": {"kind": "", "spec": {"x": 1}}})
        ),
        [
            "template.spec.x: unknown field \"template.spec.x\"",
            "template.apiVersion: Required value: must not be empty",
            "template.kind: Required value: must not be empty"
        ]
    );
}

#[test]
fn the_generated_crd_uses_no_keyword_left_unchecked() {
    use kube::CustomResourceExt as _;
    let crd = crate::crd::Migration::crd();
    for version in &crd.spec.versions {
        let mut root = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.clone())
            .unwrap();
        // The status is dropped on create (status subresource), so never validated here.
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        root.properties.as_mut().unwrap().remove("status");
        assert_eq!(
            keywords_outside(&root),
            Vec::<String>::new(),
            "{}",
            version.name
        );
    }
}

#[test]
fn the_keyword_guard_notices_a_keyword_left_unchecked() {
    let s = object_of(serde_json::json!({
        "l": {"type": "array", "uniqueItems": true, "items": {"type": "string",
              "format": "date-time"}}
    }));
    assert_eq!(keywords_outside(&s), ["l: uniqueItems", "l[*]: format"]);
}

#[test]
fn pattern_classes_and_anchors_mean_what_they_mean_in_go() {
    let s = object_of(serde_json::json!({
        "image": {"type": "string", "pattern": r"^[^\s]+$"},
        "digits": {"type": "string", "pattern": r"^\d+$"},
        "word": {"type": "string", "pattern": r"\bx\b"},
        "name": {"type": "string", "pattern": "^[a-z]+$"}
    }));
    // A no-break space is not white space to RE2, an accented letter is no word character
    let ok = serde_json::json!({"image": "a\u{a0}b", "digits": "42", "word": "éx", "name": "a"});
    assert_eq!(refusals(&s, ok), Vec::<String>::new());
    let paths = |doc| {
        validate(&s, &doc)
            .into_iter()
            .map(|e| e.path)
            .collect::<Vec<_>>()
    };
    // Arabic-Indic digits are no \d to RE2; $ does not match before a final newline
    let bad = serde_json::json!({"image": "a\tb", "digits": "٤٢", "word": "x_", "name": "a\n"});
    assert_eq!(paths(bad), ["digits", "image", "name", "word"]);
}

#[test]
fn every_pattern_of_the_crd_compiles() {
    use kube::CustomResourceExt as _;
    fn patterns(s: &JSONSchemaProps, found: &mut Vec<String>) {
        found.extend(s.pattern.clone());
        for prop in s.properties.iter().flat_map(|p| p.values()) {
            patterns(prop, found);
        }
        if let Some(JSONSchemaPropsOrArray::Schema(each)) = &s.items {
            patterns(each, found);
        }
    }
    let crd = crate::crd::Migration::crd();
    let mut found = Vec::new();
    for version in &crd.spec.versions {
        let root = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        patterns(root.unwrap(), &mut found);
    }
    assert!(found.len() >= 10, "{found:?}");
    for pattern in &found {
        assert!(re2(pattern).is_ok(), "{pattern}: {:?}", re2(pattern).err());
    }
}

#[test]
fn pruning_drops_the_nulls_the_schema_allows_nowhere_and_keeps_the_rest() {
    let s = object_of(serde_json::json!({
        "a": {"type": "object", "default": {}, "properties": {}},
        "n": {"type": "string", "nullable": true},
        "m": {"type": "object", "additionalProperties": {"type": "string"}},
        "l": {"type": "array", "items": {"type": "object", "properties": {
            "x": {"type": "string"}
        }}}
    }));
    let mut doc = serde_json::json!({
        "a": null, "n": null, "m": {"k": null}, "l": [{"x": null}, null], "other": null
    });
    prune_nulls(&s, &mut doc);
    assert_eq!(
        doc,
        serde_json::json!({"n": null, "m": {}, "l": [{}, null], "other": null})
    );
}
