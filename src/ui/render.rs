//! Rendering: the Handlebars templates (embedded), the static assets (embedded, served with
//! a content hash in their URL) and the stylesheet of option colours.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::{
    Context as HbContext, Handlebars, Helper, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use include_dir::{Dir, include_dir};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::schema::compiled::Catalog;

pub static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/ui/templates");
static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/ui/assets");

/// Colours for options that have none, so a user-made entity's chips are as legible as the
/// templates' (picked by the option's position, so they stay put).
pub const PALETTE: &[&str] = &[
    "0969da", "1a7f37", "bc4c00", "8250df", "bf3989", "0e8a7e", "cf222e", "4f46e5", "bf8700",
    "0891b2", "6e7781", "8c959f",
];

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.register_helper("icon", Box::new(icon_helper));
        register_dir(&mut hb, &TEMPLATES);
        hb
    })
}

fn register_dir(hb: &mut Handlebars<'static>, dir: &'static Dir<'static>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        if let (Some(name), Some(text)) = (path.strip_suffix(".hbs"), file.contents_utf8())
            && let Err(error) = hb.register_template_string(name, text)
        {
            // Templates are compiled in; a broken one fails the render test, not a request.
            tracing::error!(template = name, %error, "template does not compile");
        }
    }
    for sub in dir.dirs() {
        register_dir(hb, sub);
    }
}

/// `{{icon "plus"}}`: an icon from the sprite (decorative; the control carries the label).
fn icon_helper(
    h: &Helper,
    _: &Handlebars,
    _: &HbContext,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let name = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("icon", 0))?;
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let class = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .map(|c| format!("icon {c}"))
        .unwrap_or_else(|| "icon".to_owned());
    out.write(&format!(
        "<svg class=\"{class}\" aria-hidden=\"true\"><use href=\"{}#i-{safe}\"/></svg>",
        asset_url("icons.svg")
    ))?;
    Ok(())
}

/// Renders a template with a context.
pub fn render(name: &str, data: &impl Serialize) -> Result<String> {
    registry()
        .render(name, data)
        .map_err(|e| Error::internal(format!("template {name}: {e}")))
}

struct Asset {
    bytes: &'static [u8],
    hash: String,
}

fn assets() -> &'static HashMap<String, Asset> {
    static ALL: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut map = HashMap::new();
        collect(&ASSETS, &mut map);
        map
    })
}

fn collect(dir: &'static Dir<'static>, map: &mut HashMap<String, Asset>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        let digest = Sha256::digest(file.contents());
        let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        map.insert(
            path,
            Asset {
                bytes: file.contents(),
                hash,
            },
        );
    }
    for sub in dir.dirs() {
        collect(sub, map);
    }
}

/// The URL of an asset with its content hash, so it can be cached for a year.
pub fn asset_url(path: &str) -> String {
    match assets().get(path) {
        Some(a) => format!("/ui/assets/{path}?v={}", a.hash),
        None => format!("/ui/assets/{path}"),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("md") | Some("LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /ui/assets/{*path}`: an embedded file; cached for a year (its URL changes with its
/// content), answered with 304 when the browser has it.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = assets().get(path.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", asset.hash);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

/// The colour class of an option: its own colour, else one from the palette by position.
pub fn option_color(color: Option<&str>, index: usize) -> String {
    let own = color
        .map(|c| c.trim_start_matches('#').to_ascii_lowercase())
        .filter(|c| c.len() == 6 && c.chars().all(|ch| ch.is_ascii_hexdigit()));
    let hex = own.unwrap_or_else(|| PALETTE[index % PALETTE.len()].to_owned());
    format!("c-{hex}")
}

/// The option colours in use, as the stylesheet `/ui/colors.css` serves (six hex digits each,
/// so nothing but a colour reaches the CSS).
pub fn colors_css(catalog: &Catalog) -> String {
    let mut colors: BTreeSet<String> = PALETTE.iter().map(|c| (*c).to_owned()).collect();
    for entity in catalog.all() {
        for field in &entity.def.fields {
            for (i, option) in field.options.iter().enumerate() {
                let class = option_color(option.color.as_deref(), i);
                colors.insert(class.trim_start_matches("c-").to_owned());
            }
        }
    }
    colors
        .iter()
        .map(|c| format!(".c-{c}{{--chip:#{c}}}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut hb = Handlebars::new();
        hb.register_helper("icon", Box::new(icon_helper));
        fn walk(hb: &mut Handlebars<'static>, dir: &'static Dir<'static>) {
            for file in dir.files() {
                let path = file.path().to_string_lossy().into_owned();
                if let Some(name) = path.strip_suffix(".hbs") {
                    hb.register_template_string(name, file.contents_utf8().unwrap_or_default())
                        .unwrap_or_else(|e| panic!("{path}: {e}"));
                }
            }
            for sub in dir.dirs() {
                walk(hb, sub);
            }
        }
        walk(&mut hb, &TEMPLATES);
    }

    #[test]
    fn no_inline_script_or_style_in_templates() {
        for file in TEMPLATES.files() {
            let text = file.contents_utf8().unwrap_or_default();
            for banned in [
                "<script>",
                "style=",
                "<style",
                "onclick",
                "onload=",
                "javascript:",
            ] {
                assert!(
                    !text.contains(banned),
                    "{} contains {banned}",
                    file.path().display()
                );
            }
        }
    }

    #[test]
    fn assets_have_hashed_urls() {
        assert!(asset_url("app.css").starts_with("/ui/assets/app.css?v="));
        assert!(asset_url("vendor/htmx.min.js").contains("?v="));
        assert_eq!(option_color(Some("#CF222E"), 3), "c-cf222e");
        assert_eq!(option_color(Some("red;}"), 0), "c-0969da");
    }
}
