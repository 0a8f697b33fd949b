//! Releases: one version everywhere (crate, chart, default image tag, Dockerfile, CHANGELOG), the
//! chart packages, and the GitHub workflows pass actionlint and do what the README says a
//! release does (multi-arch image from the Dockerfile with SBOM and provenance, cosign keyless,
//! the chart as an OCI artifact, the rendered manifests on the release).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

use crate::support::{repo_root as root, stdout_ok as stdout};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The directory with helm: `KUBEBUILDER_ASSETS`, or what scripts/control-plane-tools.sh caches.
fn helm() -> PathBuf {
    if let Ok(dir) = std::env::var("KUBEBUILDER_ASSETS")
        && Path::new(&dir).join("helm").exists()
    {
        return Path::new(&dir).join("helm");
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/control-plane-tools.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/control-plane-tools.sh");
    let dir = stdout(&out, "scripts/control-plane-tools.sh");
    Path::new(dir.trim().lines().last().unwrap_or_default()).join("helm")
}

fn workflow(name: &str) -> Value {
    yaml(&format!(".github/workflows/{name}"))
}

/// Every step of every job of a workflow.
fn steps(w: &Value) -> Vec<Value> {
    w["jobs"]
        .as_mapping()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_sequence().cloned().unwrap_or_default())
        .collect()
}

fn step_using(w: &Value, action: &str) -> Value {
    steps(w)
        .into_iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(&format!("{action}@"))))
        .unwrap_or_else(|| panic!("no step uses {action}"))
}

fn runs(w: &Value) -> String {
    steps(w)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn one_version_everywhere() {
    let chart = yaml("charts/cds-redis-operator/Chart.yaml");
    assert_eq!(chart["version"].as_str(), Some(VERSION), "Chart.yaml version");
    assert_eq!(chart["appVersion"].as_str(), Some(VERSION), "Chart.yaml appVersion");

    // The image the chart runs by default: its tag is empty (the appVersion) or the version.
    let values = yaml("charts/cds-redis-operator/values.yaml");
    let tag = values["image"]["tag"].as_str().unwrap();
    assert!(tag.is_empty() || tag == VERSION, "values.yaml image.tag {tag:?}");
    let image = format!("{}:{VERSION}", values["image"]["repository"].as_str().unwrap());
    let out = Command::new(helm())
        .args([
            "template",
            "v",
            "charts/cds-redis-operator",
            "--kube-version",
            "1.37.2",
            "--show-only",
            "templates/deployment.yaml",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let rendered: Value = serde_norway::from_str(&stdout(&out, "helm template")).unwrap();
    assert_eq!(
        rendered["spec"]["template"]["spec"]["containers"][0]["image"].as_str(),
        Some(image.as_str()),
        "the chart's default image"
    );
    assert!(
        read("deploy/cds-redis-operator.yaml").contains(&format!("image: {image}\n")),
        "deploy/cds-redis-operator.yaml runs {image}"
    );

    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("\nARG VERSION={VERSION}\n")),
        "the Dockerfile's VERSION"
    );
    assert!(
        dockerfile.contains(&format!("docker build -t cds-redis-operator:{VERSION} .")),
        "the Dockerfile's build comment"
    );

    let changelog = read("CHANGELOG.md");
    let latest = changelog
        .lines()
        .find_map(|l| l.strip_prefix("## ["))
        .and_then(|l| l.split(']').next())
        .expect("a version entry in CHANGELOG.md");
    assert_eq!(latest, VERSION, "the latest CHANGELOG.md entry");

    let out = Command::new(env!("CARGO_BIN_EXE_cds-redis-operator"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(stdout(&out, "--version").contains(VERSION));

    // The release workflow's check agrees.
    let out = Command::new("bash")
        .arg(root().join("scripts/release-version.sh"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out, "scripts/release-version.sh").trim(), VERSION);
}

#[test]
fn a_tag_is_released_only_as_the_version_with_a_dated_changelog_entry() {
    let check = |tag: &str| {
        Command::new("bash")
            .args([
                root().join("scripts/release-version.sh").to_str().unwrap(),
                "--tag",
                tag,
            ])
            .output()
            .unwrap()
    };
    for tag in ["v999.0.0".to_owned(), VERSION.to_owned(), format!("v{VERSION}-rc.1")] {
        let out = check(&tag);
        assert!(!out.status.success(), "the tag {tag} passed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("the tag {tag}")), "{stderr}");
    }
    // The tag of the version passes once its CHANGELOG entry is dated, not before.
    let entry = read("CHANGELOG.md")
        .lines()
        .find(|l| l.starts_with(&format!("## [{VERSION}]")))
        .unwrap()
        .to_owned();
    let dated = entry.rsplit(" - ").next().is_some_and(|d| {
        d.len() == 10
            && d.split('-').map(str::len).eq([4, 2, 2])
            && d.replace('-', "").chars().all(|c| c.is_ascii_digit())
    });
    let out = check(&format!("v{VERSION}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if dated {
        assert_eq!(stdout(&out, "release-version.sh --tag").trim(), VERSION);
    } else {
        assert!(!out.status.success(), "an undated entry passed: {entry}");
        assert!(stderr.contains("date the entry"), "{stderr}");
    }
}

#[test]
fn workflows_pass_actionlint() {
    let out = Command::new("bash")
        .arg(root().join("scripts/actionlint.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/actionlint.sh");
    let actionlint = PathBuf::from(stdout(&out, "scripts/actionlint.sh").trim());
    let have_shellcheck = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_shellcheck {
        assert!(
            std::env::var("CI").is_err(),
            "shellcheck is missing under CI (GitHub's runners have it): actionlint would skip the run: scripts"
        );
        eprintln!("shellcheck not installed: actionlint checks the run: scripts without it");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let out = Command::new(&actionlint)
        .arg("-no-color")
        .args(&files)
        .current_dir(root())
        .output()
        .unwrap();
    let report = stdout(&out, "actionlint");
    assert!(report.trim().is_empty(), "{report}");

    // It does check: a misspelt input of a known action is an error.
    let broken = read(".github/workflows/release.yml").replace("sbom: true", "sboom: true");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let path = dir.path().join(".github/workflows/release.yml");
    std::fs::write(&path, broken).unwrap();
    std::fs::copy(
        root().join(".github/workflows/ci.yml"),
        dir.path().join(".github/workflows/ci.yml"),
    )
    .unwrap();
    let out = Command::new(&actionlint)
        .arg("-no-color")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "actionlint accepted a misspelt input");
    assert!(String::from_utf8_lossy(&out.stdout).contains("sboom"));
}

#[test]
fn ci_runs_the_ci_script() {
    let ci = workflow("ci.yml");
    for trigger in ["push", "pull_request", "workflow_call"] {
        assert!(ci["on"].get(trigger).is_some(), "CI runs on {trigger}");
    }
    let step = steps(&ci)
        .into_iter()
        .find(|s| s["run"].as_str() == Some("bash .ci/run"))
        .expect("a step runs `bash .ci/run`");
    assert_eq!(step["env"]["CI"].as_str(), Some("true"));
    assert!(
        runs(&ci).contains("rustup toolchain install 1.95"),
        "the crate's rust-version"
    );
}

#[test]
fn the_release_builds_signs_and_publishes_from_the_dockerfile() {
    let release = workflow("release.yml");
    assert_eq!(release["on"]["push"]["tags"], serde_norway::to_value(["v*"]).unwrap());
    assert_eq!(
        release["jobs"]["ci"]["uses"].as_str(),
        Some("./.github/workflows/ci.yml"),
        "CI first"
    );
    let job = &release["jobs"]["release"];
    assert_eq!(job["needs"].as_str(), Some("ci"));
    for (scope, access) in [("contents", "write"), ("packages", "write"), ("id-token", "write")] {
        assert_eq!(job["permissions"][scope].as_str(), Some(access), "permission {scope}");
    }
    // The tag is the one version.
    assert!(runs(&release).contains("scripts/release-version.sh --tag \"$GITHUB_REF_NAME\""));

    // The image: the Dockerfile, both architectures, SBOM and provenance, pushed, then signed.
    step_using(&release, "docker/setup-qemu-action");
    step_using(&release, "docker/setup-buildx-action");
    let build = step_using(&release, "docker/build-push-action");
    let with = &build["with"];
    assert_eq!(with["context"].as_str(), Some("."));
    assert_eq!(with["file"].as_str(), Some("Dockerfile"));
    let platforms: Vec<&str> = with["platforms"].as_str().unwrap().split(',').map(str::trim).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(with["push"].as_bool(), Some(true));
    assert_eq!(with["sbom"].as_bool(), Some(true));
    assert_eq!(with["provenance"].as_str(), Some("mode=max"));
    assert!(
        with["build-args"]
            .as_str()
            .unwrap()
            .contains("VERSION=${{ steps.version.outputs.version }}")
    );
    step_using(&release, "sigstore/cosign-installer");
    let script = runs(&release);
    assert!(
        script.contains("cosign sign --yes \"$IMAGE@$DIGEST\""),
        "the image is signed"
    );
    assert!(!script.contains("--key"), "keyless signing");
    let dockerfiles: Vec<_> = std::fs::read_dir(root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("Dockerfile"))
        .collect();
    assert_eq!(dockerfiles.len(), 1, "the Dockerfile is the one recipe of the image");

    // The chart as an OCI artifact, the rendered manifests on the release.
    assert!(script.contains("helm package charts/cds-redis-operator"));
    assert!(script.contains("helm push \"dist/cds-redis-operator-$VERSION.tgz\" \"$CHARTS\""));
    assert!(script.contains("scripts/render-manifests.sh"));
    let gh = step_using(&release, "softprops/action-gh-release");
    let files = gh["with"]["files"].as_str().unwrap();
    for file in [
        "dist/cds-redis-operator.yaml",
        "dist/redisinstances.cds.capitalonline.net.yaml",
    ] {
        assert!(files.contains(file), "{file} is attached");
    }
}

#[test]
fn every_action_is_pinned_to_a_version() {
    for name in ["ci.yml", "release.yml"] {
        for step in steps(&workflow(name)) {
            let Some(uses) = step["uses"].as_str() else { continue };
            let (_, pin) = uses
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: {uses} has no version"));
            let version = pin.strip_prefix('v').is_some_and(|v| {
                v.split('.')
                    .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            });
            let sha = pin.len() == 40 && pin.chars().all(|c| c.is_ascii_hexdigit());
            assert!(version || sha, "{name}: {uses} is not pinned to a version");
        }
    }
}

#[test]
fn the_chart_packages_with_its_crd_schema_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(helm())
        .args(["package", "charts/cds-redis-operator", "--destination"])
        .arg(dir.path())
        .current_dir(root())
        .output()
        .unwrap();
    stdout(&out, "helm package");
    let archive = dir.path().join(format!("cds-redis-operator-{VERSION}.tgz"));
    let out = Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
    let listing = stdout(&out, "tar tzf");
    for file in [
        "cds-redis-operator/Chart.yaml",
        "cds-redis-operator/values.yaml",
        "cds-redis-operator/values.schema.json",
        "cds-redis-operator/crds/redisinstances.cds.capitalonline.net.yaml",
        "cds-redis-operator/templates/deletion-protection.yaml",
        "cds-redis-operator/templates/deployment.yaml",
    ] {
        assert!(
            listing.lines().any(|l| l == file),
            "{file} missing from the package:\n{listing}"
        );
    }
}
