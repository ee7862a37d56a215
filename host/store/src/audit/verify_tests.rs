//! Classification of every kind of break, on in-memory chains (the SQLite-level tampering is in
//! `tests/it/audit_tamper.rs`).

use super::*;
use crate::audit::{Signer, seal_raw};
use serde_json::json;

fn chain(n: u64) -> Vec<SealedRecord> {
    let mut records: Vec<SealedRecord> = Vec::new();
    for i in 1..=n {
        let prev = records.last().map(|r| (r.seq, r.hash.as_str()));
        let body = json!({ "i": i, "tool": "email.send" });
        let record = seal_raw(prev, 1_000 + i as i64, Some(format!("run_{}", i % 3)), "tool.call", body);
        records.push(record);
    }
    records
}

fn reseal(record: &mut SealedRecord) {
    record.hash = record.computed_hash();
}

fn check(records: Vec<SealedRecord>) -> Result<VerifyReport, Tamper> {
    verify(records, &[], &[], None)
}

fn expect(records: Vec<SealedRecord>, seq: u64, kind: TamperKind) -> Tamper {
    let tamper = check(records).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (seq, kind), "{tamper}");
    tamper
}

#[test]
fn clean_chains_verify_with_their_head() {
    let report = check(Vec::new()).unwrap();
    assert_eq!((report.records, report.head_seq, report.head_hash.as_str()), (0, 0, GENESIS_HASH));
    let records = chain(10);
    let head = records[9].hash.clone();
    let report = check(records).unwrap();
    assert_eq!((report.records, report.head_seq), (10, 10));
    assert_eq!(report.head_hash, head);
    assert_eq!((report.checkpoints_checked, report.newest_checkpoint_seq), (0, None));
}

#[test]
fn edited_content_or_hash_is_named() {
    let mut records = chain(10);
    records[4].body = json!({ "i": 5, "tool": "email.send", "extra": true });
    expect(records, 5, TamperKind::Edited);
    let mut records = chain(10);
    records[9].kind = "tool.other".into();
    expect(records, 10, TamperKind::Edited);
    let mut records = chain(10);
    records[2].hash = "f".repeat(64);
    expect(records, 3, TamperKind::Edited);
    let mut records = chain(10);
    records[6].prev_hash = "e".repeat(64);
    expect(records, 7, TamperKind::Edited);
}

#[test]
fn a_resealed_record_is_named_not_its_successor() {
    let mut records = chain(10);
    records[4].body = json!("rewritten");
    reseal(&mut records[4]);
    expect(records, 5, TamperKind::Edited);
}

#[test]
fn deleted_records_are_named_with_or_without_renumbering() {
    let mut records = chain(10);
    records.remove(4);
    let tamper = expect(records, 5, TamperKind::Deleted);
    assert!(tamper.message.contains("record 5 is missing"), "{tamper}");
    let mut records = chain(10);
    records.drain(3..6);
    expect(records, 4, TamperKind::Deleted);
    let mut records = chain(10);
    records.remove(0);
    expect(records, 1, TamperKind::Deleted);
    let mut records = chain(10);
    records.remove(4);
    for record in &mut records[4..] {
        record.seq -= 1;
    }
    let tamper = expect(records, 5, TamperKind::Deleted);
    assert!(tamper.message.contains("renumbered"), "{tamper}");
}

#[test]
fn inserted_records_are_named() {
    // A forged record that does not even try to link.
    let mut records = chain(10);
    let mut forged = records[5].clone();
    forged.body = json!("forged");
    forged.prev_hash = "a".repeat(64);
    forged.hash = "b".repeat(64);
    records.insert(5, forged);
    for (i, record) in records.iter_mut().enumerate().skip(6) {
        record.seq = i as u64 + 1;
    }
    expect(records, 6, TamperKind::Inserted);
    // A forged record linked and sealed properly: the break shows at the next record.
    let mut records = chain(10);
    let forged = seal_raw(Some((5, &records[4].hash)), 0, None, "approval.granted", json!({}));
    records.insert(5, forged);
    for (i, record) in records.iter_mut().enumerate().skip(6) {
        record.seq = i as u64 + 1;
    }
    expect(records, 6, TamperKind::Inserted);
    // A seq that cannot exist.
    let mut records = chain(3);
    let mut zero = records[0].clone();
    zero.seq = 0;
    records.insert(0, zero);
    expect(records, 0, TamperKind::Inserted);
}

#[test]
fn swapped_records_are_named_as_reordered() {
    // Whole rows swapped (each keeps its hash): seq 3 and 7 trade places.
    let mut records = chain(10);
    records.swap(2, 6);
    records[2].seq = 3;
    records[6].seq = 7;
    expect(records, 3, TamperKind::Reordered);
    // Neighbours swapped.
    let mut records = chain(10);
    records.swap(3, 4);
    records[3].seq = 4;
    records[4].seq = 5;
    expect(records, 4, TamperKind::Reordered);
    // Only the contents swapped, seq/prev/hash left in place.
    let mut records = chain(10);
    let (a, b) = (records[2].clone(), records[6].clone());
    for (target, source) in [(2, &b), (6, &a)] {
        records[target].ts = source.ts;
        records[target].run_id = source.run_id.clone();
        records[target].kind = source.kind.clone();
        records[target].body = source.body.clone();
    }
    let tamper = expect(records, 3, TamperKind::Reordered);
    assert!(tamper.message.contains("record 7"), "{tamper}");
}

#[test]
fn changed_seq_is_an_edit() {
    let mut records = chain(5);
    records[4].seq = 9;
    expect(records, 9, TamperKind::Edited);
}

#[test]
fn checkpoints_catch_truncation_rollback_and_bad_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
    let key = signer.verifying_key();
    let records = chain(10);
    let at = |i: usize| signer.sign(records[i - 1].seq, &records[i - 1].hash, 5);
    let (cp4, cp8) = (at(4), at(8));

    let report = verify(records.clone(), &[cp4.clone(), cp8.clone()], &[cp4.clone(), cp8.clone()], Some(&key)).unwrap();
    assert_eq!((report.checkpoints_checked, report.newest_checkpoint_seq), (4, Some(8)));

    // Newest records removed after the database recorded the checkpoint.
    let cut = records[..6].to_vec();
    let tamper = verify(cut.clone(), &[cp4.clone(), cp8.clone()], std::slice::from_ref(&cp8), Some(&key)).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (7, TamperKind::Truncated), "{tamper}");
    // An older database that never saw the newest checkpoint.
    let tamper = verify(cut, std::slice::from_ref(&cp4), &[cp4.clone(), cp8.clone()], Some(&key)).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (7, TamperKind::RolledBack), "{tamper}");
    // History rewritten under a checkpoint (every record re-sealed, so the walk alone passes).
    let mut rewritten = chain(10);
    rewritten[1].body = json!("rewritten");
    for i in 1..10 {
        if i > 1 {
            rewritten[i].prev_hash = rewritten[i - 1].hash.clone();
        }
        reseal(&mut rewritten[i]);
    }
    check(rewritten.clone()).unwrap();
    let tamper = verify(rewritten, &[], std::slice::from_ref(&cp4), Some(&key)).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (4, TamperKind::RolledBack), "{tamper}");

    // Signatures: a flipped byte, a checkpoint signed by another key.
    let mut bad = cp8.clone();
    bad.signature.replace_range(0..2, if &bad.signature[0..2] == "00" { "01" } else { "00" });
    let tamper = verify(records.clone(), &[cp4.clone(), bad], &[], Some(&key)).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (8, TamperKind::BadSignature), "{tamper}");
    let other = Signer::load_or_create(&dir.path().join("other")).unwrap();
    let foreign = other.sign(8, &records[7].hash, 5);
    verify(records.clone(), &[], std::slice::from_ref(&foreign), None).unwrap();
    let tamper = verify(records, &[], &[foreign], Some(&key)).unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (8, TamperKind::BadSignature), "{tamper}");
}

#[test]
fn streaming_stops_reading_once_the_tail_is_long_enough() {
    let mut verifier = ChainVerifier::new(&[], &[], None);
    let mut records = chain(3);
    records[0].body = json!("edited");
    for record in records {
        verifier.push(record);
    }
    assert!(verifier.wants_more());
    let tamper = verifier.finish().unwrap_err();
    assert_eq!((tamper.seq, tamper.kind), (1, TamperKind::Edited));
}
