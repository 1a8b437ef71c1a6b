//! How a route describes itself in `/openapi.json`: its [`Operation`] (parameters, body,
//! responses). The document is assembled in `api::openapi`.

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    /// `path`, `query` or `header`.
    pub location: &'static str,
    pub required: bool,
    pub schema: Value,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub description: &'static str,
    /// `(media type, schema)`; `None` for an empty body.
    pub content: Option<(&'static str, Value)>,
}

/// The OpenAPI operation of one route.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub description: Option<&'static str>,
    pub params: Vec<Param>,
    /// Component schema of the JSON request body.
    pub body: Option<&'static str>,
    pub responses: Vec<Resp>,
}

pub(crate) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Operation {
    pub fn new(id: &'static str, summary: &'static str, tag: &'static str) -> Self {
        Self {
            id,
            summary,
            tag,
            description: None,
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
        }
    }

    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    pub fn path_param(mut self, name: &'static str, description: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: "path",
            required: true,
            schema: json!({ "type": "string" }),
            description,
        });
        self
    }

    pub fn query(mut self, name: &'static str, schema: Value, description: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: "query",
            required: false,
            schema,
            description,
        });
        self
    }

    pub fn header(mut self, name: &'static str, schema: Value, description: &'static str) -> Self {
        self.params.push(Param {
            name,
            location: "header",
            required: false,
            schema,
            description,
        });
        self
    }

    pub fn body(mut self, schema: &'static str) -> Self {
        self.body = Some(schema);
        self
    }

    /// A JSON success response with a component schema.
    pub fn ok(mut self, status: u16, description: &'static str, schema: &'static str) -> Self {
        self.responses.push(Resp {
            status,
            description,
            content: Some(("application/json", schema_ref(schema))),
        });
        self
    }

    pub fn ok_text(mut self, description: &'static str) -> Self {
        self.responses.push(Resp {
            status: 200,
            description,
            content: Some(("text/plain", json!({ "type": "string" }))),
        });
        self
    }

    /// A response that is not JSON (an HTML page, an SVG image).
    pub fn content(mut self, status: u16, description: &'static str, media: &'static str) -> Self {
        self.responses.push(Resp {
            status,
            description,
            content: Some((media, json!({ "type": "string" }))),
        });
        self
    }

    pub fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.responses.push(Resp {
            status,
            description,
            content: None,
        });
        self
    }

    /// A problem-details error response.
    pub fn error(mut self, status: u16, description: &'static str) -> Self {
        self.responses.push(problem(status, description));
        self
    }
}

pub(crate) fn problem(status: u16, description: &'static str) -> Resp {
    Resp {
        status,
        description,
        content: Some(("application/problem+json", schema_ref("Problem"))),
    }
}
