//! Which routes a `configure` function declares, for the test that every route is described in
//! the OpenAPI document (and every documented path is served). It exists only for that test:
//! nothing is recorded unless [`declared_routes`] is running on the same thread.

use std::cell::RefCell;
use std::collections::BTreeSet;

use actix_web::web;

thread_local! {
    /// The routes seen while [`declared_routes`] runs on this thread; `None` otherwise.
    static RECORDING: RefCell<Option<BTreeSet<(String, &'static str)>>> = const { RefCell::new(None) };
}

/// Notes an endpoint's methods (called by [`super::Endpoint::finish`]).
pub(super) fn record(path: &str, methods: &[&'static str]) {
    RECORDING.with(|recording| {
        if let Some(routes) = recording.borrow_mut().as_mut() {
            let template = template(path);
            routes.extend(methods.iter().map(|method| (template.clone(), *method)));
        }
    });
}

/// Every `(path, method)` that `configure` serves through [`super::endpoint`], with actix's
/// patterns written as OpenAPI path templates (`/users/{id:[0-9a-f-]{36}}` is
/// `/users/{id}`). actix runs a `configure` function as soon as it is given to an app, so this
/// builds an app only to read its routes; nothing is served.
pub fn declared_routes(configure: fn(&mut web::ServiceConfig)) -> BTreeSet<(String, &'static str)> {
    RECORDING.with(|recording| *recording.borrow_mut() = Some(BTreeSet::new()));
    drop(actix_web::App::new().configure(configure));
    RECORDING
        .with(|recording| recording.borrow_mut().take())
        .unwrap_or_default()
}

/// An actix path pattern as an OpenAPI path template: each `{name:regex}` becomes `{name}`.
pub fn template(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '{' {
            continue;
        }
        // The segment's name, then (after a `:`) a regex whose braces nest.
        let mut depth = 1;
        let mut in_name = true;
        for c in chars.by_ref() {
            match c {
                ':' if in_name && depth == 1 => in_name = false,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                c if in_name => out.push(c),
                _ => {}
            }
        }
        out.push('}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn patterns_become_templates() {
        assert_eq!(template("/api/v1/users"), "/api/v1/users");
        assert_eq!(
            template("/api/v1/users/{id:[0-9a-fA-F-]{36}}/lock"),
            "/api/v1/users/{id}/lock"
        );
        assert_eq!(template("/static/{path:.*}"), "/static/{path}");
        assert_eq!(template("/webhooks/{id}/test"), "/webhooks/{id}/test");
    }
}
