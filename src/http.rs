//! Shared HTTP plumbing: declaring an endpoint's methods once, so that a wrong method gets a
//! 405 with an `Allow` header that can never disagree with the routes.

use actix_web::dev::HttpServiceFactory;
use actix_web::{FromRequest, Handler, Resource, Responder, web};

use crate::api::error::method_not_allowed;

/// An endpoint under construction: a path and the methods it serves.
pub struct Endpoint {
    resource: Resource,
    allow: Vec<&'static str>,
}

/// Starts an endpoint at `path` (one of [`crate::paths`]).
pub fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

macro_rules! method {
    ($name:ident, $route:path, $text:literal) => {
        /// Serves this method with `handler`.
        pub fn $name<F, Args>(mut self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.resource = self.resource.route($route().to(handler));
            self.allow.push($text);
            self
        }
    };
}

impl Endpoint {
    method!(get, web::get, "GET");
    method!(post, web::post, "POST");
    method!(put, web::put, "PUT");
    method!(patch, web::patch, "PATCH");
    method!(delete, web::delete, "DELETE");

    /// The finished resource: any other method is answered 405 with `Allow`.
    pub fn finish(self) -> impl HttpServiceFactory {
        let allow = self.allow.join(", ");
        self.resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(&allow) }
        }))
    }
}
