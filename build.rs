// The built-in template packages and the pages' templates, strings and assets are embedded in
// the binary, and so are the migrations; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=builtin-templates");
    println!("cargo:rerun-if-changed=src/ui/templates");
    println!("cargo:rerun-if-changed=src/ui/i18n");
    println!("cargo:rerun-if-changed=src/ui/assets");
    // sqlx::migrate! embeds the migrations: a new file must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
