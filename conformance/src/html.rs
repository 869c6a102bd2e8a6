//! Just enough HTML reading for a scripted user agent: the forms of a page (action, method,
//! enctype, id, and their `input`/`button` controls), the `<title>` and the alert text.
//!
//! No JavaScript is run: an auto-submitting form_post page is read, not executed.

/// One form of a page.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// `id` attribute.
    pub id: Option<String>,
    /// `action` attribute as written (unescaped); empty when absent.
    pub action: String,
    /// `method` attribute, lower-cased; `get` when absent.
    pub method: String,
    /// `enctype` attribute, when present.
    pub enctype: Option<String>,
    /// Every `<input>` with a name: (name, value, type).
    pub inputs: Vec<Control>,
    /// Every `<button>` with a name: (name, value).
    pub buttons: Vec<Control>,
}

/// A named form control.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub name: String,
    pub value: String,
    pub kind: String,
}

impl Form {
    /// The values a browser submits for the hidden inputs.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .filter(|c| c.kind == "hidden")
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    /// Whether the form has a control (input or button) with this name.
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|c| c.name == name)
    }

    /// Whether the form has a button with this name and value.
    pub fn has_button(&self, name: &str, value: &str) -> bool {
        self.buttons
            .iter()
            .any(|c| c.name == name && c.value == value)
    }
}

/// Decodes the character references askama (and most servers) produce: named `&amp; &lt; &gt;
/// &quot; &apos; &nbsp;` and numeric `&#NN;` / `&#xHH;`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let Some(end) = after.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => {
                if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok().and_then(char::from_u32)
                } else {
                    None
                }
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of a start tag's inside (`name="v" other='w' bare flag`), names lower-cased,
/// values unescaped.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let bytes = tag.as_bytes();
    let mut i = 0;
    let mut attrs = Vec::new();
    // Skip the tag name.
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'/'
        {
            i += 1;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let vstart = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                let v = &tag[vstart..i.min(tag.len())];
                i += 1;
                v
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &tag[vstart..i]
            };
            attrs.push((name, unescape(value)));
        } else if !name.is_empty() {
            attrs.push((name, String::new()));
        }
    }
    attrs
}

/// The value of an attribute read by [`elements`].
pub fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Finds every start tag `<name ...>` in `html` (case-insensitive), returning the text between
/// `<` and `>` and the byte offset after the tag.
fn start_tags<'a>(html: &'a str, lower: &str, name: &str) -> Vec<(usize, &'a str, usize)> {
    let needle = format!("<{name}");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos;
        let after_name = start + needle.len();
        let boundary = lower[after_name..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/');
        if !boundary {
            from = after_name;
            continue;
        }
        let Some(end_rel) = html[start..].find('>') else {
            break;
        };
        let end = start + end_rel;
        found.push((start, &html[start + 1..end], end + 1));
        from = end + 1;
    }
    found
}

/// Every form of the page, with its controls.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut result = Vec::new();
    for (_, tag, body_start) in start_tags(html, &lower, "form") {
        let body_end = lower[body_start..]
            .find("</form")
            .map(|p| body_start + p)
            .unwrap_or(html.len());
        let attrs = attributes(tag);
        let inner = &html[body_start..body_end];
        let inner_lower = &lower[body_start..body_end];
        let mut form = Form {
            id: attr(&attrs, "id").map(str::to_owned),
            action: attr(&attrs, "action").unwrap_or_default().to_owned(),
            method: attr(&attrs, "method").unwrap_or("get").to_ascii_lowercase(),
            enctype: attr(&attrs, "enctype").map(str::to_owned),
            ..Form::default()
        };
        for (_, itag, _) in start_tags(inner, inner_lower, "input") {
            let a = attributes(itag);
            if let Some(name) = attr(&a, "name") {
                form.inputs.push(Control {
                    name: name.to_owned(),
                    value: attr(&a, "value").unwrap_or_default().to_owned(),
                    kind: attr(&a, "type").unwrap_or("text").to_ascii_lowercase(),
                });
            }
        }
        for (_, btag, _) in start_tags(inner, inner_lower, "button") {
            let a = attributes(btag);
            if let Some(name) = attr(&a, "name") {
                form.buttons.push(Control {
                    name: name.to_owned(),
                    value: attr(&a, "value").unwrap_or_default().to_owned(),
                    kind: attr(&a, "type").unwrap_or("submit").to_ascii_lowercase(),
                });
            }
        }
        result.push(form);
    }
    result
}

/// The attributes (names lower-cased, values unescaped) of every `<name ...>` start tag of the
/// page, in order: e.g. every `iframe`, `a` or `meta`.
pub fn elements(html: &str, name: &str) -> Vec<Vec<(String, String)>> {
    let lower = html.to_ascii_lowercase();
    start_tags(html, &lower, name)
        .into_iter()
        .map(|(_, tag, _)| attributes(tag))
        .collect()
}

/// The target of a `<meta http-equiv="refresh" content="N; url=...">`, as written.
pub fn meta_refresh(html: &str) -> Option<String> {
    elements(html, "meta").iter().find_map(|a| {
        if !attr(a, "http-equiv")?.eq_ignore_ascii_case("refresh") {
            return None;
        }
        let content = attr(a, "content")?;
        let (_, rest) = content.split_once([';', ','])?;
        let rest = rest.trim_start();
        let rest = rest
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("url"))
            .map(|_| rest[3..].trim_start())?;
        let target = rest.strip_prefix('=')?.trim();
        let target = target.trim_matches(|c| c == '"' || c == '\'');
        (!target.is_empty()).then(|| target.to_owned())
    })
}

/// Text of the first element `<tag ...>text</tag>` (tags inside stripped), trimmed.
fn element_text(html: &str, tag: &str, must_contain: Option<&str>) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    for (_, inside, after) in start_tags(html, &lower, tag) {
        if let Some(needle) = must_contain
            && !inside.to_ascii_lowercase().contains(needle)
        {
            continue;
        }
        let end = lower[after..]
            .find(&format!("</{tag}"))
            .map(|p| after + p)?;
        let mut text = String::new();
        let mut in_tag = false;
        for c in html[after..end].chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = unescape(
            text.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_str(),
        );
        return Some(text);
    }
    None
}

/// The page's `<title>`.
pub fn title(html: &str) -> Option<String> {
    element_text(html, "title", None)
}

/// A short human description of a page: its title and its alert message, if any.
pub fn summary(html: &str) -> String {
    let title = title(html).unwrap_or_default();
    let alert = element_text(html, "p", Some("alert"))
        .or_else(|| element_text(html, "div", Some("alert")))
        .unwrap_or_default();
    match (title.is_empty(), alert.is_empty()) {
        (false, false) => format!("\"{title}\": {alert}"),
        (false, true) => format!("\"{title}\""),
        (true, false) => alert,
        (true, true) => "(no title)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_forms_and_entities() {
        let html = r#"<html><head><title>Sign in</title></head><body>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="a&amp;b&#x27;c&quot;">
  <input type="hidden" name="request" value="r1">
  <input id="username" name="username" type="text" required value="">
  <input id="password" name="password" type="password" required>
  <button type="submit" class="primary">Sign in</button>
</form>
<form method="post" action="https://rp.example/cb?x=1&amp;y=2" id="form-post">
<input type="hidden" name="code" value="abc">
</form></body></html>"#;
        let forms = forms(html);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].action, "/login");
        assert_eq!(forms[0].method, "post");
        assert!(forms[0].has_input("password"));
        assert_eq!(
            forms[0].hidden_fields(),
            vec![
                ("csrf_token".to_owned(), "a&b'c\"".to_owned()),
                ("request".to_owned(), "r1".to_owned())
            ]
        );
        assert_eq!(forms[1].id.as_deref(), Some("form-post"));
        assert_eq!(forms[1].action, "https://rp.example/cb?x=1&y=2");
        assert_eq!(title(html).as_deref(), Some("Sign in"));
    }

    #[test]
    fn reads_frames_and_refresh() {
        let html = r#"<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2;url=https://rp.example/after?state=a&amp;b"></head>
<body><a href="https://rp.example/after?state=a&amp;b" id="continue">Continue</a>
<iframe class="frontchannel" src="https://rp.example/fc?iss=http%3A%2F%2Fop&amp;sid=S1" width="0"></iframe></body></html>"#;
        assert_eq!(
            meta_refresh(html).as_deref(),
            Some("https://rp.example/after?state=a&b")
        );
        let frames = elements(html, "iframe");
        assert_eq!(frames.len(), 1);
        assert_eq!(
            attr(&frames[0], "src"),
            Some("https://rp.example/fc?iss=http%3A%2F%2Fop&sid=S1")
        );
        let links = elements(html, "a");
        assert_eq!(attr(&links[0], "id"), Some("continue"));
        assert_eq!(
            meta_refresh("<meta http-equiv=refresh content='0; URL = /x'>").as_deref(),
            Some("/x")
        );
    }

    #[test]
    fn unescapes() {
        assert_eq!(
            unescape("&lt;a&gt; &amp;&amp; &#39;x&#39; & y"),
            "<a> && 'x' & y"
        );
    }
}
