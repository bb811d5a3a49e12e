//! Stand-ins for the service binaries, for testing launchers (`Shop`,
//! `bazaar up`) without the real services: each serves `GET /readyz` on
//! `BAZAAR_HTTP_ADDR` and records how it was started.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

use crate::Service;

/// Needs only python3, which installing nats-server needs anyway.
const FAKE_SERVICE: &str = r#"#!/usr/bin/env python3
import http.server, json, os, sys
data = os.environ["BAZAAR_DATA_DIR"]
instance = os.environ["BAZAAR_INSTANCE"]
with open(os.path.join(data, instance + ".started.json"), "w") as f:
    json.dump({"args": sys.argv[1:], "env": dict(os.environ)}, f)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
host, port = os.environ["BAZAAR_HTTP_ADDR"].rsplit(":", 1)
print(instance, "ready", flush=True)
http.server.HTTPServer((host, int(port)), Ready).serve_forever()
"#;

/// Writes a fake for each of the five service binaries into `dir`.
pub fn write_fake_services(dir: &Path) -> anyhow::Result<()> {
    write_scripts(dir, FAKE_SERVICE)
}

/// Writes `script` (with its `#!` line) as each of the five service binaries.
pub fn write_scripts(dir: &Path, script: &str) -> anyhow::Result<()> {
    for service in Service::ALL {
        let path = dir.join(service.name());
        std::fs::write(&path, script)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// How a fake instance was started: `{"args": [...], "env": {...}}`, or
/// `None` before it has written that down.
pub fn fake_started_with(data_dir: &Path, instance: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(data_dir.join(format!("{instance}.started.json"))).ok()?;
    serde_json::from_str(&text).ok()
}
