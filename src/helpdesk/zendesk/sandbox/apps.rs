//! The fake Zendesk's Apps API: private apps uploaded as a zip, built by an asynchronous job,
//! and installed with settings, as `install zendesk --app` drives it.
//!
//! Shapes follow Zendesk's Apps API reference (the records are not wrapped in a key):
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v2/apps/uploads` (`multipart/form-data`, the zip in the part `uploaded_data`) | 201 `{"id"}`; no such part: 400; a file that is not a zip with a `manifest.json` holding a JSON object: 422 |
//! | `POST /api/v2/apps` `{"name","short_description","upload_id"}` | 202 `{"job_id"}`: builds a new private app from the upload |
//! | `PUT /api/v2/apps/{app_id}` `{"upload_id"}` | 202 `{"job_id"}`: rebuilds the app from the upload |
//! | `GET /api/v2/apps/job_statuses/{job_id}` | 200 `{"id","url","status","message","app_id",..}`: `queued` on the first read, then `completed` (or `failed` with its `message`) |
//! | `GET /api/v2/apps/owned` | 200 `{"apps"}`: the account's private apps, with the manifest's `version`, `parameters`, ... |
//! | `GET /api/v2/apps/installations` | 200 `{"installations"}`; a setting the manifest marks `secure` is not shown |
//! | `POST /api/v2/apps/installations` `{"app_id","settings":{"name",..}}` | 201 the installation; no such app: 404; no `settings.name` or a required parameter missing: 422 |
//! | `PUT /api/v2/apps/installations/{id}` `{"settings"}` | 200 the installation, its settings merged with the ones sent |
//! | `DELETE /api/v2/apps/installations/{id}` | 204; no such installation: 404 |
//! | `DELETE /api/v2/apps/{app_id}` | 204, the app gone with its installations; no such app: 404 |
//!
//! A build is applied when its job is created; [`Apps::fail_next_build`] makes the next one
//! fail instead, changing nothing. The zip's entries must be stored, not compressed (as the
//! zips escalation-gate writes are): a compressed entry counts as unreadable.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

/// An answer: status and JSON body.
pub type Answer = (u16, Value);

/// A private app as the Apps API lists it, with the files of the package it was built from.
#[derive(Debug, Clone)]
pub struct App {
    pub record: Value,
    /// The package's paths.
    pub files: Vec<String>,
    /// The package's `manifest.json`.
    pub manifest: Value,
}

/// An installation with every setting, the secure ones too (which the API never shows).
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: u64,
    pub app_id: u64,
    pub settings: Map<String, Value>,
}

struct Job {
    reads: u32,
    app_id: Option<u64>,
    failure: Option<String>,
}

/// The Apps API's state.
#[derive(Default)]
pub struct Apps {
    next_id: u64,
    uploads: BTreeMap<u64, (Value, Vec<String>)>,
    apps: BTreeMap<u64, App>,
    jobs: BTreeMap<String, Job>,
    installations: BTreeMap<u64, Installation>,
    failing_builds: VecDeque<String>,
}

fn error(status: u16, error: &str, description: &str) -> Answer {
    (status, json!({"error": error, "description": description}))
}

fn invalid(description: &str) -> Answer {
    error(422, "RecordInvalid", description)
}

fn not_found() -> Answer {
    error(404, "RecordNotFound", "Not found")
}

impl Apps {
    /// The account's private apps, by id.
    pub fn owned(&self) -> Vec<App> {
        self.apps.values().cloned().collect()
    }

    /// The installations, with their secure settings.
    pub fn installations(&self) -> Vec<Installation> {
        self.installations.values().cloned().collect()
    }

    /// How many packages were uploaded.
    pub fn uploads(&self) -> usize {
        self.uploads.len()
    }

    /// The next build job fails with `message` and changes nothing.
    pub fn fail_next_build(&mut self, message: &str) {
        self.failing_builds.push_back(message.to_string());
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Serves `/api/v2/apps/...` (`rest` after `api/v2`); `None` for a path it does not serve.
    pub fn serve(
        &mut self,
        method: &str,
        rest: &[&str],
        content_type: Option<&str>,
        body: &[u8],
        base_url: &str,
    ) -> Option<Answer> {
        let json = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        Some(match (method, rest) {
            ("POST", ["apps", "uploads"]) => self.upload(content_type, body),
            ("POST", ["apps"]) => {
                let b = json();
                match b["name"].as_str().filter(|n| !n.trim().is_empty()) {
                    None => invalid("Name can't be blank"),
                    Some(name) => {
                        let record = json!({
                            "name": name,
                            "short_description": b["short_description"].clone(),
                        });
                        self.build(None, &b, record, base_url)
                    }
                }
            }
            ("GET", ["apps", "owned"]) => (
                200,
                json!({"apps": self.apps.values().map(|a| a.record.clone()).collect::<Vec<_>>()}),
            ),
            ("GET", ["apps", "job_statuses", id]) => self.job_status(id, base_url),
            ("GET", ["apps", "installations"]) => (
                200,
                json!({"installations": self.installations.values().map(|i| self.shown(i)).collect::<Vec<_>>()}),
            ),
            ("POST", ["apps", "installations"]) => self.install(&json()),
            ("PUT", ["apps", "installations", id]) => match id.parse::<u64>() {
                Ok(id) if self.installations.contains_key(&id) => self.reinstall(id, &json()),
                _ => not_found(),
            },
            ("DELETE", ["apps", "installations", id]) => {
                match id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.installations.remove(&id))
                {
                    Some(_) => (204, Value::Null),
                    None => not_found(),
                }
            }
            ("DELETE", ["apps", id]) => match id.parse::<u64>() {
                Ok(id) if self.apps.remove(&id).is_some() => {
                    self.installations.retain(|_, i| i.app_id != id);
                    (204, Value::Null)
                }
                _ => not_found(),
            },
            ("PUT", ["apps", id]) => match id.parse::<u64>() {
                Ok(id) if self.apps.contains_key(&id) => {
                    let record = self.apps[&id].record.clone();
                    self.build(Some(id), &json(), record, base_url)
                }
                _ => not_found(),
            },
            _ => return None,
        })
    }

    fn upload(&mut self, content_type: Option<&str>, body: &[u8]) -> Answer {
        let Some(file) = content_type
            .and_then(boundary)
            .and_then(|b| form_part(body, &b, "uploaded_data"))
        else {
            return error(
                400,
                "InvalidRequest",
                "Upload a zip file as the multipart form field uploaded_data",
            );
        };
        let Some(entries) = unzip(file) else {
            return invalid("The uploaded file is not a zip archive");
        };
        let manifest = entries
            .iter()
            .find(|(path, _)| path == "manifest.json")
            .and_then(|(_, data)| serde_json::from_slice::<Value>(data).ok())
            .filter(Value::is_object);
        let Some(manifest) = manifest else {
            return invalid("The app package has no readable manifest.json");
        };
        let id = self.next();
        self.uploads.insert(
            id,
            (manifest, entries.into_iter().map(|(p, _)| p).collect()),
        );
        (201, json!({"id": id}))
    }

    /// Starts the job that builds `app_id` (a new app when `None`) from the body's `upload_id`.
    fn build(
        &mut self,
        app_id: Option<u64>,
        body: &Value,
        record: Value,
        base_url: &str,
    ) -> Answer {
        let Some((manifest, files)) = body["upload_id"]
            .as_u64()
            .and_then(|u| self.uploads.get(&u))
            .cloned()
        else {
            return invalid("upload_id does not name an upload of this account");
        };
        let job_id = format!("{:032x}", self.next());
        let failure = self.failing_builds.pop_front();
        let app_id = match &failure {
            Some(_) => None,
            None => {
                let id = app_id.unwrap_or_else(|| self.next());
                let mut record = record;
                record["id"] = json!(id);
                for key in [
                    "version",
                    "parameters",
                    "author",
                    "defaultLocale",
                    "frameworkVersion",
                ] {
                    record[key] = manifest[key].clone();
                }
                record["visibility"] = json!("private");
                record["installable"] = json!(true);
                record["url"] = json!(format!("{base_url}/api/v2/apps/{id}.json"));
                self.apps.insert(
                    id,
                    App {
                        record,
                        files,
                        manifest,
                    },
                );
                Some(id)
            }
        };
        self.jobs.insert(
            job_id.clone(),
            Job {
                reads: 0,
                app_id,
                failure,
            },
        );
        (202, json!({"job_id": job_id}))
    }

    fn job_status(&mut self, id: &str, base_url: &str) -> Answer {
        let Some(job) = self.jobs.get_mut(id) else {
            return not_found();
        };
        job.reads += 1;
        let (status, message) = match (&job.failure, job.reads) {
            (_, 1) => ("queued", Value::Null),
            (Some(m), _) => ("failed", json!(m)),
            (None, _) => ("completed", json!("Content uploaded")),
        };
        let app_id = if status == "completed" {
            json!(job.app_id)
        } else {
            Value::Null
        };
        (
            200,
            json!({
                "id": id,
                "url": format!("{base_url}/api/v2/apps/job_statuses/{id}.json"),
                "job_type": "AppBuild",
                "status": status,
                "message": message,
                "app_id": app_id,
                "total": null,
                "progress": null,
            }),
        )
    }

    /// The names of the parameters the app's manifest marks `secure`, and of those it requires.
    fn parameters(&self, app_id: u64) -> (Vec<String>, Vec<String>) {
        let params = self.apps[&app_id].manifest["parameters"].clone();
        let names = |flag: &str| {
            params
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p[flag] == true)
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        };
        (names("secure"), names("required"))
    }

    /// An installation as the API shows it: without its secure settings.
    fn shown(&self, i: &Installation) -> Value {
        let (secure, _) = self.parameters(i.app_id);
        let settings: Map<String, Value> = i
            .settings
            .iter()
            .filter(|(k, _)| !secure.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        json!({
            "id": i.id,
            "app_id": i.app_id,
            "product": "support",
            "enabled": true,
            "settings": settings,
            "settings_objects": settings.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        })
    }

    /// Why `settings` cannot be an installation of `app_id`.
    fn refused(&self, app_id: u64, settings: &Map<String, Value>) -> Option<Answer> {
        if settings
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
        {
            return Some(invalid("settings.name: Name can't be blank"));
        }
        let (_, required) = self.parameters(app_id);
        let missing = required.iter().find(|r| {
            settings
                .get(*r)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        })?;
        Some(invalid(&format!(
            "settings.{missing}: the app requires this setting"
        )))
    }

    fn install(&mut self, body: &Value) -> Answer {
        let app_id = match &body["app_id"] {
            Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        };
        let Some(app_id) = app_id.filter(|id| self.apps.contains_key(id)) else {
            return not_found();
        };
        let settings = body["settings"].as_object().cloned().unwrap_or_default();
        if let Some(refusal) = self.refused(app_id, &settings) {
            return refusal;
        }
        let id = self.next();
        let installation = Installation {
            id,
            app_id,
            settings,
        };
        let shown = self.shown(&installation);
        self.installations.insert(id, installation);
        (201, shown)
    }

    fn reinstall(&mut self, id: u64, body: &Value) -> Answer {
        let current = &self.installations[&id];
        let mut settings = current.settings.clone();
        settings.extend(body["settings"].as_object().cloned().unwrap_or_default());
        if let Some(refusal) = self.refused(current.app_id, &settings) {
            return refusal;
        }
        let installation = self.installations.get_mut(&id).expect("checked above");
        installation.settings = settings;
        let installation = installation.clone();
        (200, self.shown(&installation))
    }
}

/// The `boundary` of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The content of the form part named `name`.
fn form_part<'a>(body: &'a [u8], boundary: &str, name: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut at = find(body, delimiter.as_bytes(), 0)?;
    loop {
        let head_start = at + delimiter.len();
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let content_start = head_end + 4;
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), content_start)?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let named = head.lines().any(|line| {
            line.to_ascii_lowercase()
                .starts_with("content-disposition:")
                && line.contains(&wanted)
        });
        if named {
            return Some(&body[content_start..next]);
        }
        at = next + 2;
    }
}

/// The entries of a zip whose every entry is stored, each read whole and checked against its
/// CRC; `None` for anything else.
fn unzip(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).ok()?;
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).ok()?;
            if entry.compression() != zip::CompressionMethod::Stored {
                return None;
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).ok()?;
            Some((entry.name().ok()?.into_owned(), content))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"app.zip\"\r\n\
             Content-Type: application/zip\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    #[test]
    fn an_upload_is_a_stored_zip_with_a_manifest() {
        let zip = crate::helpdesk::sidebar::zip(&[
            ("manifest.json".into(), br#"{"name": "x"}"#.to_vec()),
            ("assets/a.txt".into(), b"hello".to_vec()),
        ])
        .unwrap();
        let mut apps = Apps::default();
        let ct = "multipart/form-data; boundary=XyZ";
        assert_eq!(
            apps.serve(
                "POST",
                &["apps", "uploads"],
                Some(ct),
                &form("XyZ", "uploaded_data", &zip),
                ""
            )
            .unwrap()
            .0,
            201
        );
        assert_eq!(
            apps.uploads.values().next().unwrap().1,
            ["manifest.json", "assets/a.txt"]
        );
        let other_part = form("XyZ", "file", &zip);
        assert_eq!(apps.upload(Some(ct), &other_part).0, 400);
        assert_eq!(apps.upload(Some("application/zip"), &zip).0, 400);
        assert_eq!(
            apps.upload(Some(ct), &form("XyZ", "uploaded_data", b"PK not a zip"))
                .0,
            422
        );
        // A byte of the manifest's content changed: its CRC no longer holds.
        let mut corrupt = zip.clone();
        let at = zip.windows(7).position(|w| w == br#"{"name""#).unwrap();
        corrupt[at + 3] ^= 1;
        assert_eq!(
            apps.upload(Some(ct), &form("XyZ", "uploaded_data", &corrupt))
                .0,
            422
        );
        let no_manifest =
            crate::helpdesk::sidebar::zip(&[("a.txt".into(), b"a".to_vec())]).unwrap();
        assert_eq!(
            apps.upload(Some(ct), &form("XyZ", "uploaded_data", &no_manifest))
                .0,
            422
        );
    }
}
