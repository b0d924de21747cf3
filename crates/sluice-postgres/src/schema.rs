//! PostgreSQL introspection into the schema model, and rendering of a schema diff as SQL.
//! (Being written.)

use sluice_core::schema::Schema;

pub async fn introspect(_client: &tokio_postgres::Client) -> sluice_core::Result<Schema> {
    Ok(Schema::default())
}

pub fn render_diff_sql(_from: &Schema, _to: &Schema) -> String {
    String::new()
}
