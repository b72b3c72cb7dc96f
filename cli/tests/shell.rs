//! Shell completions and the man page of the built binary.

mod common;
use common::{isolated, text};
use std::process::Command;

fn empty_dir(tag: &str) -> std::path::PathBuf {
    common::empty_dir("shell", tag)
}

#[test]
fn completions_and_man_page() {
    let dir = empty_dir("shell");
    let out = isolated(&dir, &["completions", "bash"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let script = dir.join("tenantry.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let top = [
        "validate",
        "plan",
        "provision",
        "decommission",
        "status",
        "runs",
        "submit",
        "tenant",
        "dev",
        "completions",
        "man",
    ];
    let offered = bash_complete(&script, &["tenantry", ""]);
    for sub in top {
        assert!(
            offered.contains(&sub.to_owned()),
            "bash offers {offered:?}, not {sub}"
        );
    }
    let offered = bash_complete(&script, &["tenantry", "tenant", ""]);
    for sub in ["validate", "add", "remove", "list"] {
        assert!(
            offered.contains(&sub.to_owned()),
            "tenant: {offered:?}, not {sub}"
        );
    }
    let offered = bash_complete(&script, &["tenantry", "dev", ""]);
    for sub in ["up", "down", "status", "selftest", "resources"] {
        assert!(
            offered.contains(&sub.to_owned()),
            "dev: {offered:?}, not {sub}"
        );
    }
    let offered = bash_complete(&script, &["tenantry", "tenant", "remove", "--re"]);
    assert!(offered.contains(&"--retain-data".to_owned()), "{offered:?}");
    assert!(offered.contains(&"--region".to_owned()), "{offered:?}");
    let offered = bash_complete(&script, &["tenantry", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(offered.contains(&shell.to_owned()), "{offered:?}");
    }
    for shell in ["zsh", "fish"] {
        let out = isolated(&dir, &["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(text(&out.stdout).contains("decommission"), "{shell}");
    }
    let out = isolated(&dir, &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));

    let out = isolated(&dir, &["man"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH tenantry"), "{page}");
    for sub in ["provision", "decommission", "status", "tenant", "dev"] {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    let pages = dir.join("man1");
    let out = isolated(&dir, &["man", "--out-dir", pages.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "tenantry.1",
        "tenantry-provision.1",
        "tenantry-tenant-add.1",
    ] {
        assert!(pages.join(page).is_file(), "{page} not written");
    }
}

/// What bash, with the completion script loaded, offers for the command line `words` (the last
/// one being completed).
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _tenantry tenantry '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}
