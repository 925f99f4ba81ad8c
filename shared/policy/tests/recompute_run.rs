//! The `recompute-run` command on a published run: it agrees with a correct
//! run and names the class whose population was changed.

use policy::sampling::{self, Drawn, PublishedClass, PublishedRun, protocol};
use std::io::Write;
use std::process::{Command, Stdio};

/// A run published whole: the committed bytes revealed with the seed.
fn published() -> PublishedRun {
    let bytes = [9u8; protocol::COMMITTED_BYTES];
    let public = "01382438112797316654";
    let seed = protocol::run_seed(&bytes, Some(public));
    let classes = [("KM-2022-000001", 40, 4), ("KM-2022-000002", 12, 3)]
        .iter()
        .map(|(id, roster, n)| {
            let population = sampling::population(id, *roster);
            let class_seed = protocol::class_seed(&seed, id);
            let sample: Vec<Drawn> = sampling::sample(&class_seed, &population, *n);
            PublishedClass {
                class_id: id.to_string(),
                class_seed,
                population_digest: sampling::population_digest(&population),
                population,
                sample_size: *n,
                sample,
                second_sample: vec![],
            }
        })
        .collect();
    PublishedRun {
        run: "2022-06-20".into(),
        commitment: protocol::commitment(&bytes),
        revealed: Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        public_value: Some(public.into()),
        seed: Some(seed),
        algorithm: sampling::ALGORITHM.into(),
        algorithm_version: sampling::ALGORITHM_VERSION.into(),
        classes,
    }
}

fn run_command(input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recompute-run"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_agrees_with_a_published_run() {
    let mut doc = serde_json::to_value(published()).unwrap();
    // The route's extra members (phase, cursors…) are ignored.
    doc["phase"] = serde_json::json!("done");
    doc["next_cursor"] = serde_json::Value::Null;
    let (code, stdout, stderr) = run_command(&doc.to_string());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("agrees: 2 class(es)"), "{stdout}");
}

#[test]
fn the_command_disagrees_when_one_population_id_is_changed_and_names_the_class() {
    let mut run = published();
    run.classes[1].population[7] = "KM-2022-000002:099".into();
    let (code, _, stderr) = run_command(&serde_json::to_string(&run).unwrap());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("class KM-2022-000002"), "{stderr}");
    assert!(!stderr.contains("class KM-2022-000001"), "{stderr}");
}

#[test]
fn the_command_reads_several_pages_and_refuses_a_run_without_a_seed() {
    let page = serde_json::to_string(&published()).unwrap();
    let (code, stdout, _) = run_command(&format!("{page}\n{page}"));
    assert_eq!(
        (code, stdout.contains("4 class(es)")),
        (0, true),
        "{stdout}"
    );
    let (code, _, stderr) = run_command(r#"{"run":"x","seed":null}"#);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn sc_draw_the_command_checks_the_revealed_bytes_against_the_commitment_published_at_creation() {
    let mut run = published();
    // Bytes that are not the committed ones (with a seed made to match them).
    let other = [8u8; protocol::COMMITTED_BYTES];
    run.revealed = Some(other.iter().map(|b| format!("{b:02x}")).collect());
    run.seed = Some(protocol::run_seed(&other, run.public_value.as_deref()));
    let (code, _, stderr) = run_command(&serde_json::to_string(&run).unwrap());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("commitment"), "{stderr}");
}
