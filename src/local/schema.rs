//! The structural part of a CRD's `openAPIV3Schema` (types, required fields, patterns, lengths,
//! bounds, enums, item counts, unknown fields), checked the way the API server checks a custom
//! resource at admission, with its wording, so that a local run refuses what `kubectl apply`
//! would refuse. The CEL rules (`x-kubernetes-validations`) are checked apart, by kube-cel.
//!
//! It covers the keywords that kube and schemars generate for a structural schema; a test fails
//! when the CRD starts to use another one, which would otherwise pass here unchecked.

use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use regex_syntax::ast;
use serde_json::Value;

/// Fields every object at the root of a resource, or in an embedded resource, may carry
/// whether or not its schema declares them.
const RESOURCE_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// One refusal: the field and what is wrong with it, worded as the API server words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as the API server names it (`spec.target.dialect`, `spec.include[2]`).
    pub path: String,
    /// What is wrong (`Required value`, `Invalid value: ...`).
    pub detail: String,
    /// A wrong type or a value outside an enum: the API server then skips the CEL rules.
    pub blocks_rules: bool,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.detail)
    }
}

/// Checks `doc`, a whole resource, against `schema`, its version's `openAPIV3Schema`. Unknown
/// fields are refused, as `kubectl apply` (strict field validation) refuses them.
pub fn validate(schema: &JSONSchemaProps, doc: &Value) -> Vec<FieldError> {
    let mut walk = Walk::default();
    walk.value(schema, doc, "", &RESOURCE_FIELDS);
    walk.errors
}

/// Removes the nulls `schema` allows nowhere (fields not `nullable`), as the API server does
/// before it applies defaults: such a field is then absent, and defaulted if it has a default.
pub fn prune_nulls(schema: &JSONSchemaProps, doc: &mut Value) {
    match doc {
        Value::Object(fields) => {
            fields.retain(|key, value| {
                let Some(field) = field_schema(schema, key) else {
                    return true;
                };
                prune_nulls(field, value);
                !value.is_null() || field.nullable == Some(true)
            });
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(each)) = &schema.items {
                items.iter_mut().for_each(|item| prune_nulls(each, item));
            }
        }
        _ => {}
    }
}

/// The schema of an object's field: its declared property, else `additionalProperties`.
fn field_schema<'a>(schema: &'a JSONSchemaProps, key: &str) -> Option<&'a JSONSchemaProps> {
    if let Some(prop) = schema.properties.as_ref().and_then(|p| p.get(key)) {
        return Some(prop);
    }
    match &schema.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(each)) => Some(each),
        _ => None,
    }
}

#[derive(Default)]
struct Walk {
    errors: Vec<FieldError>,
}

impl Walk {
    fn push(&mut self, path: &str, detail: String, blocks_rules: bool) {
        self.errors.push(FieldError {
            path: path.to_string(),
            detail,
            blocks_rules,
        });
    }

    /// `implicit`: fields allowed on this object without being declared (a resource's own).
    fn value(&mut self, s: &JSONSchemaProps, v: &Value, path: &str, implicit: &[&str]) {
        if v.is_null() && s.nullable == Some(true) {
            return;
        }
        if !self.type_matches(s, v, path) {
            return;
        }
        self.enumeration(s, v, path);
        match v {
            Value::String(text) => self.string(s, text, path),
            Value::Number(_) => self.number(s, v, path),
            Value::Array(items) => self.array(s, items, path),
            Value::Object(fields) => self.object(s, fields, path, implicit),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn type_matches(&mut self, s: &JSONSchemaProps, v: &Value, path: &str) -> bool {
        let expected: &[&str] = match (s.type_.as_deref(), s.x_kubernetes_int_or_string) {
            (_, Some(true)) => &["integer", "string"],
            (Some(t), _) => &[t][..],
            (None, _) => return true,
        };
        let actual = json_type(v);
        let integral = actual == "number" && v.as_f64().is_some_and(|n| n.fract() == 0.0);
        let fits = expected.iter().any(|t| {
            *t == actual || (*t == "number" && actual == "integer") || (*t == "integer" && integral)
        });
        if !fits {
            let expected = expected.join(",");
            self.push(
                path,
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \
                     \"{actual}\""
                ),
                true,
            );
        }
        fits
    }

    fn enumeration(&mut self, s: &JSONSchemaProps, v: &Value, path: &str) {
        let Some(allowed) = s.enum_.as_ref().filter(|e| !e.is_empty()) else {
            return;
        };
        if allowed.iter().any(|a| a.0 == *v) {
            return;
        }
        let supported = allowed
            .iter()
            .map(|a| match &a.0 {
                Value::String(text) => format!("{text:?}"),
                other => format!("\"{other}\""),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let value = shown(v);
        self.push(
            path,
            format!("Unsupported value: {value}: supported values: {supported}"),
            true,
        );
    }

    fn string(&mut self, s: &JSONSchemaProps, text: &str, path: &str) {
        let chars = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
        if let Some(max) = s.max_length.filter(|max| chars > *max) {
            self.push(
                path,
                format!("Too long: may not be more than {max} bytes"),
                false,
            );
        }
        if let Some(min) = s.min_length.filter(|min| chars < *min) {
            self.push(
                path,
                format!(
                    "Invalid value: {text:?}: {path} in body should be at least {min} chars long"
                ),
                false,
            );
        }
        if let Some(pattern) = &s.pattern {
            self.pattern(pattern, text, path);
        }
    }

    fn pattern(&mut self, pattern: &str, text: &str, path: &str) {
        match re2(pattern) {
            Ok(re) if re.is_match(text) => {}
            Ok(_) => self.push(
                path,
                format!("Invalid value: {text:?}: {path} in body should match '{pattern}'"),
                false,
            ),
            // The API server refuses such a CRD; a local run refuses the field it cannot check.
            Err(e) => self.push(
                path,
                format!("Internal error: the schema's pattern '{pattern}' does not compile: {e}"),
                false,
            ),
        }
    }

    fn number(&mut self, s: &JSONSchemaProps, v: &Value, path: &str) {
        let Some(n) = v.as_f64() else {
            return;
        };
        let exclusive_max = s.exclusive_maximum == Some(true);
        if let Some(max) = s
            .maximum
            .filter(|max| n > *max || (exclusive_max && n == *max))
        {
            self.out_of_bounds(v, path, "less", exclusive_max, max);
        }
        let exclusive_min = s.exclusive_minimum == Some(true);
        if let Some(min) = s
            .minimum
            .filter(|min| n < *min || (exclusive_min && n == *min))
        {
            self.out_of_bounds(v, path, "greater", exclusive_min, min);
        }
        self.integer_format(s, v, path);
    }

    /// `side`: `less` past a maximum, `greater` under a minimum.
    fn out_of_bounds(&mut self, v: &Value, path: &str, side: &str, exclusive: bool, bound: f64) {
        let than = if exclusive {
            "than"
        } else {
            "than or equal to"
        };
        let value = shown(v);
        self.push(
            path,
            format!("Invalid value: {value}: {path} in body should be {side} {than} {bound}"),
            false,
        );
    }

    /// `format: int32` and `int64` bound an integer to what the type holds.
    fn integer_format(&mut self, s: &JSONSchemaProps, v: &Value, path: &str) {
        let (format, low, high) = match s.format.as_deref() {
            Some(f @ "int32") => (f, i128::from(i32::MIN), i128::from(i32::MAX)),
            Some(f @ "int64") => (f, i128::from(i64::MIN), i128::from(i64::MAX)),
            _ => return,
        };
        let exact = v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from));
        let fits = match exact {
            Some(n) => (low..=high).contains(&n),
            // high + 1 as a float is exact (a power of two); high itself may not be.
            None => v
                .as_f64()
                .is_some_and(|n| n >= low as f64 && n < (high + 1) as f64),
        };
        if !fits {
            let value = shown(v);
            self.push(
                path,
                format!(
                    "Invalid value: {value}: {path} in body must be within the range of {format}"
                ),
                false,
            );
        }
    }

    fn array(&mut self, s: &JSONSchemaProps, items: &[Value], path: &str) {
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        if let Some(max) = s.max_items.filter(|max| len > *max) {
            self.push(
                path,
                format!("Too many: {len}: must have at most {max} items"),
                false,
            );
        }
        if let Some(min) = s.min_items.filter(|min| len < *min) {
            self.push(
                path,
                format!("Invalid value: {len}: {path} in body should have at least {min} items"),
                false,
            );
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match &s.items {
                Some(JSONSchemaPropsOrArray::Schema(each)) => {
                    self.value(each, item, &item_path, &[]);
                }
                Some(JSONSchemaPropsOrArray::Schemas(list)) => {
                    if let Some(each) = list.get(i) {
                        self.value(each, item, &item_path, &[]);
                    }
                }
                None => {}
            }
        }
    }

    fn object(
        &mut self,
        s: &JSONSchemaProps,
        fields: &serde_json::Map<String, Value>,
        path: &str,
        implicit: &[&str],
    ) {
        let embedded = s.x_kubernetes_embedded_resource == Some(true);
        let implicit = if embedded {
            &RESOURCE_FIELDS[..]
        } else {
            implicit
        };
        for (key, value) in fields {
            let field_path = child(path, key);
            match field_schema(s, key) {
                // A null where the schema allows none is pruned (or defaulted), not refused.
                Some(field) if value.is_null() && field.nullable != Some(true) => {}
                Some(field) => self.value(field, value, &field_path, &[]),
                None if implicit.contains(&key.as_str()) => {}
                None if s.x_kubernetes_preserve_unknown_fields == Some(true) => {}
                None if matches!(
                    s.additional_properties,
                    Some(JSONSchemaPropsOrBool::Bool(true))
                ) => {}
                None => self.push(&field_path, format!("unknown field {field_path:?}"), false),
            }
        }
        self.required(s, fields, path);
        if embedded {
            self.embedded(fields, path);
        }
    }

    /// A required field is there once defaults are applied and non-nullable nulls pruned.
    fn required(
        &mut self,
        s: &JSONSchemaProps,
        fields: &serde_json::Map<String, Value>,
        path: &str,
    ) {
        for key in s.required.iter().flatten() {
            let prop = s.properties.as_ref().and_then(|p| p.get(key));
            let defaulted = prop.is_some_and(|p| p.default.is_some());
            let present = match fields.get(key) {
                None => defaulted,
                Some(Value::Null) => defaulted || prop.is_some_and(|p| p.nullable == Some(true)),
                Some(_) => true,
            };
            if !present {
                self.push(&child(path, key), "Required value".into(), false);
            }
        }
    }

    /// An embedded resource names its kind, as the API server requires.
    fn embedded(&mut self, fields: &serde_json::Map<String, Value>, path: &str) {
        for key in ["apiVersion", "kind"] {
            let named = fields
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty());
            if !named {
                self.push(
                    &child(path, key),
                    "Required value: must not be empty".into(),
                    false,
                );
            }
        }
    }
}

/// Compiles a schema `pattern` with the meaning the API server (Go's RE2) gives it. Rust's
/// regex reads the same syntax, but its `\d`, `\s`, `\w` and `\b` are Unicode-aware where
/// RE2's are ASCII, so those are spelt out as ASCII first.
fn re2(pattern: &str) -> Result<regex::Regex, String> {
    let ast = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    let mut ascii = pattern.to_string();
    let Ok(spans) = ast::visit(&ast, AsciiPerlClasses::default());
    for (span, class) in spans.iter().rev() {
        ascii.replace_range(span.start.offset..span.end.offset, class);
    }
    regex::Regex::new(&ascii).map_err(|e| e.to_string())
}

/// Where a pattern has a Perl class or a word boundary, and its ASCII spelling (a nested
/// class, which Rust's regex also takes inside brackets).
#[derive(Default)]
struct AsciiPerlClasses(Vec<(ast::Span, &'static str)>);

impl ast::Visitor for AsciiPerlClasses {
    type Output = Vec<(ast::Span, &'static str)>;
    type Err = std::convert::Infallible;

    fn finish(self) -> Result<Self::Output, Self::Err> {
        Ok(self.0)
    }

    fn visit_pre(&mut self, node: &ast::Ast) -> Result<(), Self::Err> {
        match node {
            ast::Ast::ClassPerl(class) => self.0.push((class.span, ascii_class(class))),
            ast::Ast::Assertion(a) if a.kind == ast::AssertionKind::WordBoundary => {
                self.0.push((a.span, r"(?-u:\b)"));
            }
            ast::Ast::Assertion(a) if a.kind == ast::AssertionKind::NotWordBoundary => {
                self.0.push((a.span, r"(?-u:\B)"));
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), Self::Err> {
        if let ast::ClassSetItem::Perl(class) = item {
            self.0.push((class.span, ascii_class(class)));
        }
        Ok(())
    }
}

/// RE2's Perl classes: `\d` is `[0-9]`, `\s` is `[\t\n\f\r ]`, `\w` is `[0-9A-Za-z_]`.
fn ascii_class(class: &ast::ClassPerl) -> &'static str {
    match (&class.kind, class.negated) {
        (ast::ClassPerlKind::Digit, false) => "[0-9]",
        (ast::ClassPerlKind::Digit, true) => "[^0-9]",
        (ast::ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
        (ast::ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        (ast::ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ast::ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as the API server quotes it in a message: strings quoted, numbers bare.
fn shown(v: &Value) -> String {
    match v {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
