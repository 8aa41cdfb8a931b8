//! `$(VAR)` expansion in env values, commands and args, with the kubelet's rules: `$(NAME)`
//! becomes the value of `NAME` when it is defined and stays as written when it is not, `$$`
//! becomes `$`, and any other `$` is kept.

/// Expands `$(NAME)` references in `input` using `lookup`.
pub fn expand<'a, F>(input: &str, lookup: F) -> String
where
    F: Fn(&str) -> Option<&'a str>,
{
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = variable_reference(after) {
            match lookup(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// For text right after a `$`: the name in `(NAME)` and the text after the closing paren.
fn variable_reference(after: &str) -> Option<(&str, &str)> {
    let inner = after.strip_prefix('(')?;
    let close = inner.find(')')?;
    Some((&inner[..close], &inner[close + 1..]))
}

/// Expands with an ordered list of `(name, value)` pairs; a later pair shadows an earlier one.
pub fn expand_with(input: &str, vars: &[(String, String)]) -> String {
    expand(input, |name| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("WORKSPACE".into(), "/workspace".into()),
            ("STEP".into(), "extract".into()),
            ("EMPTY".into(), String::new()),
        ]
    }

    #[test]
    fn defined_variables_are_replaced() {
        assert_eq!(
            expand_with("--workspace=$(WORKSPACE)", &vars()),
            "--workspace=/workspace"
        );
        assert_eq!(expand_with("$(STEP)$(STEP)", &vars()), "extractextract");
        assert_eq!(expand_with("a$(EMPTY)b", &vars()), "ab");
    }

    #[test]
    fn undefined_variables_stay_as_written() {
        assert_eq!(expand_with("$(MISSING)/x", &vars()), "$(MISSING)/x");
    }

    #[test]
    fn double_dollar_escapes_a_reference() {
        assert_eq!(expand_with("$$(STEP)", &vars()), "$(STEP)");
        assert_eq!(expand_with("cost: $$5", &vars()), "cost: $5");
        assert_eq!(expand_with("$$$(STEP)", &vars()), "$extract");
    }

    #[test]
    fn lone_dollars_and_unclosed_references_are_kept() {
        assert_eq!(expand_with("echo $HOME", &vars()), "echo $HOME");
        assert_eq!(expand_with("$(STEP", &vars()), "$(STEP");
        assert_eq!(expand_with("end$", &vars()), "end$");
        assert_eq!(
            expand_with("sh -c 'echo ${STEP}'", &vars()),
            "sh -c 'echo ${STEP}'"
        );
    }

    #[test]
    fn later_definitions_shadow_earlier_ones() {
        let mut v = vars();
        v.push(("STEP".into(), "migrate".into()));
        assert_eq!(expand_with("$(STEP)", &v), "migrate");
    }
}
