//! The HTML compliance report (`tenantry compliance --format html`) in a real browser: headless
//! Chromium renders the page to a screenshot, which Tesseract reads back (OCR), and dumps the DOM
//! it built. Needs `chromium` and `tesseract` (`make browser`); without them the test fails and
//! says how to install them. The files stay in `<target>/tmp/report-html/<platform>-<sweep>/`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tenantry::compliance::html::html;
use tenantry::compliance::render::{headline, rows};
use tenantry::compliance::{ComplianceReport, Status};
use tokio::process::Command;

/// The browser window, and so the screenshot: tall enough for the header, the summary by
/// requirement and the first results.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 3000;
/// What a PNG of that size with text on it weighs at least (a blank one is a few KB).
const MIN_PNG_BYTES: u64 = 40 * 1024;
/// The heading of the page's results (`compliance::html`).
const RESULTS: &str = "Results, failures first";
const TIMEOUT: Duration = Duration::from_secs(120);
const INSTALL: &str = "install them with `make browser` (on Debian: `sudo apt-get install -y \
                       chromium tesseract-ocr`)";

/// Renders `report`'s page in headless Chromium and checks what it shows: the screenshot is a
/// PNG of the window's size with the headline and the first failed control on it (read by OCR),
/// and the DOM has every result. Returns the directory holding the page, screenshot, OCR text
/// and DOM.
pub(crate) async fn check_in_browser(report: &ComplianceReport) -> PathBuf {
    let started = Instant::now();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-html")
        .join(format!(
            "{}-{}",
            file_name(&report.platform_id),
            file_name(&report.request_id)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let page = dir.join("report.html");
    let png = dir.join("report.png");
    let ocr_txt = dir.join("ocr.txt");
    let dom_html = dir.join("dom.html");
    std::fs::write(&page, html(report))
        .unwrap_or_else(|e| panic!("writing {}: {e}", page.display()));
    let url = format!("file://{}", page.display());
    let profile = dir.join("chromium-profile");
    let chromium = |extra: Vec<String>| {
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra);
        args.push(url.clone());
        args
    };

    // The screenshot: a PNG of the window's size, not blank.
    run(
        "chromium",
        &chromium(vec![
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--screenshot={}", png.display()),
        ]),
        &format!("screenshot of {} to {}", page.display(), png.display()),
    )
    .await;
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "chromium wrote no screenshot of {} at {}: {e}",
            page.display(),
            png.display()
        )
    });
    let (width, height) = png_size(&bytes)
        .unwrap_or_else(|| panic!("{} is not a PNG (page {})", png.display(), page.display()));
    assert_eq!(
        (width, height),
        (WIDTH, HEIGHT),
        "the screenshot {} is {width}x{height}, not the window's {WIDTH}x{HEIGHT} (page {})",
        png.display(),
        page.display()
    );
    assert!(
        bytes.len() as u64 >= MIN_PNG_BYTES,
        "the screenshot {} is only {} bytes: a blank page? (page {})",
        png.display(),
        bytes.len(),
        page.display()
    );

    // What a reader sees on it: the headline and, failures first, the first failed control.
    let out = run(
        "tesseract",
        &[png.display().to_string(), "stdout".to_owned()],
        &format!("OCR of {}", png.display()),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::write(&ocr_txt, &text);
    let read = fold(&text);
    let first_failed = rows(report)
        .into_iter()
        .find(|(_, r)| r.status == Status::Fail)
        .map(|(c, _)| c.id);
    let expected = [
        "compliance sweep",
        &report.request_id,
        &report.platform_id,
        "by pci dss",
        RESULTS,
    ];
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|token| !read.contains(&fold(token)))
        .collect();
    assert!(
        missing.is_empty(),
        "OCR of the screenshot {} did not read {missing:?} (headline: {:?}; page {}, OCR text in \
         {}):\n{}",
        png.display(),
        headline(report),
        page.display(),
        ocr_txt.display(),
        text.trim()
    );
    // The first result under the results' heading is the first failure.
    if let Some(id) = first_failed {
        let results = read.find(&fold(RESULTS)).unwrap_or_default();
        assert!(
            read[results..].contains(&fold(id)),
            "OCR of the screenshot {} did not read the first failed control {id} under \
             {RESULTS:?} (page {}, OCR text in {}):\n{}",
            png.display(),
            page.display(),
            ocr_txt.display(),
            text.trim()
        );
    }

    // The DOM Chromium built: one result element per result, each control's heading.
    let out = run(
        "chromium",
        &chromium(vec!["--dump-dom".to_owned()]),
        &format!("DOM of {}", page.display()),
    )
    .await;
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::write(&dom_html, &dom);
    let mut controls: Vec<&str> = report.results.iter().map(|r| r.control.as_str()).collect();
    controls.sort_unstable();
    controls.dedup();
    let absent: Vec<&&str> = controls
        .iter()
        .filter(|id| !dom.contains(&format!("<span class=\"id\">{id}</span>")))
        .collect();
    assert!(
        absent.is_empty(),
        "the rendered DOM of {} (in {}) has no result of {absent:?}",
        page.display(),
        dom_html.display()
    );
    assert_eq!(
        dom.matches("<article class=\"result ").count(),
        report.results.len(),
        "the rendered DOM of {} (in {}) does not have one result element per result",
        page.display(),
        dom_html.display()
    );
    assert!(
        !dom.contains("<script"),
        "the rendered DOM of {} (in {}) has a script element",
        page.display(),
        dom_html.display()
    );
    eprintln!(
        "compliance report {} rendered in the browser in {:.1}s: page {}, screenshot {}, OCR {}, DOM {}",
        report.request_id,
        started.elapsed().as_secs_f64(),
        page.display(),
        png.display(),
        ocr_txt.display(),
        dom_html.display()
    );
    dir
}

/// Runs `program`; fails the test, saying what it was doing, when it is missing, fails or hangs.
async fn run(program: &str, args: &[String], what: &str) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(TIMEOUT, child).await {
        Err(_) => panic!("{what}: `{program}` did not finish in {TIMEOUT:?}: {args:?}"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{what}: `{program}` is not installed: the browser test needs chromium and \
             tesseract; {INSTALL}"
        ),
        Ok(Err(e)) => panic!("{what}: running `{program}` {args:?}: {e}"),
        Ok(Ok(out)) if !out.status.success() => panic!(
            "{what}: `{program}` {args:?} exited with {}: {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr))
        ),
        Ok(Ok(out)) => out,
    }
}

/// The last lines of a command's noisy stderr.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The width and height in a PNG's IHDR chunk (right after the signature).
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    Some((word(16), word(20)))
}

/// Text as OCR and the page are compared: lower case, one space between words, no space
/// around a hyphen, every dash a hyphen, and the letters OCR confuses with digits as digits.
fn fold(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            'o' => '0',
            'l' | 'i' | '|' => '1',
            c => c,
        })
        .collect();
    mapped
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" -", "-")
        .replace("- ", "-")
}

/// `text` as a file name.
fn file_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[test]
fn png_size_reads_the_ihdr_chunk() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(1280u32.to_be_bytes());
    png.extend(3000u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(png_size(&png), Some((1280, 3000)));
    assert_eq!(png_size(b"GIF89a"), None);
}

#[test]
fn fold_forgives_what_ocr_mangles() {
    assert_eq!(
        fold("TNY - EKS\u{2014}8\n  Compliance   sweep"),
        fold("tny-eks-8 compliance sweep")
    );
    assert!(fold("TNY-S3-2 fai| comp-broken").contains(&fold("comp-broken")));
}

#[tokio::test]
#[should_panic(
    expected = "is not installed: the browser test needs chromium and tesseract; install them with `make browser`"
)]
async fn a_missing_tool_fails_with_how_to_install_it() {
    run("tenantry-no-such-browser", &[], "screenshot").await;
}
