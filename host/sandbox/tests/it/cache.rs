//! The compilation cache (issue 13 §5): an entry loads only if it is sealed, with this
//! install's key kept outside the cache directory, for the component being loaded. Another
//! component's artifact planted under its name, a changed key, a key or an entry that is not
//! private: all mean compiling again, never loading what is there and never an error.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tollgate_sandbox::{CacheOutcome, Grants, Sandbox, SandboxConfig, sha256_hex};

use crate::common;

struct Fixture {
    _dir: tempfile::TempDir,
    cache: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        Fixture { _dir: dir, cache }
    }

    fn config(&self) -> SandboxConfig {
        SandboxConfig { cache_dir: Some(self.cache.clone()), max_concurrent_instances: 8, ..SandboxConfig::default() }
    }

    /// The default key: beside the cache directory.
    fn key(&self) -> PathBuf {
        self.cache.with_file_name("cache.key")
    }

    /// A fresh sandbox (as after a restart) inspects `plugin`: its manifest name and how the
    /// cache served it.
    async fn inspect_with(&self, config: SandboxConfig, plugin: &str) -> (String, CacheOutcome) {
        let bytes = fs::read(common::plugin_path(plugin)).unwrap();
        let i = Sandbox::new(config).unwrap().inspect(&bytes).await.unwrap();
        (i.manifest.name, i.cache)
    }

    async fn inspect(&self, plugin: &str) -> (String, CacheOutcome) {
        self.inspect_with(self.config(), plugin).await
    }

    /// The cache entry of `plugin`, whatever the entry format.
    fn entry(&self, plugin: &str) -> PathBuf {
        let digest = sha256_hex(&fs::read(common::plugin_path(plugin)).unwrap());
        fs::read_dir(&self.cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&digest))
            .unwrap_or_else(|| panic!("no cache entry for {plugin}"))
    }
}

/// echo's `add` through a freshly loaded plugin: proof the code that runs is echo's.
async fn echo_adds(config: SandboxConfig) -> CacheOutcome {
    let plugin = Sandbox::new(config).unwrap().load_file(common::plugin_path("echo"), Grants::new()).await.unwrap();
    let out = plugin.call("add", r#"{"a":2,"b":3}"#, &common::ctx("k")).await;
    let value = out.result.unwrap_or_else(|e| panic!("echo's add fails: {e}"));
    assert_eq!(value["sum"].as_f64(), Some(5.0), "{value}");
    plugin.cache_outcome()
}

#[tokio::test]
async fn another_components_artifact_planted_under_a_digest_is_never_loaded() {
    let fx = Fixture::new();
    assert_eq!(fx.inspect("echo").await, ("echo".into(), CacheOutcome::Miss));
    assert_eq!(fx.inspect("forger").await, ("forger".into(), CacheOutcome::Miss));
    assert_eq!(fx.inspect("echo").await, ("echo".into(), CacheOutcome::Hit));

    // The same user copies forger's entry over echo's: same owner, same private mode.
    let (echo, forger) = (fx.entry("echo"), fx.entry("forger"));
    fs::copy(&forger, &echo).unwrap();
    assert_eq!(fs::metadata(&echo).unwrap().permissions().mode() & 0o777, 0o600);

    // Loading echo compiles echo again and replaces the planted entry.
    assert_eq!(fx.inspect("echo").await, ("echo".into(), CacheOutcome::Rejected));
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);
    assert_ne!(fs::read(&echo).unwrap(), fs::read(&forger).unwrap());
    assert_eq!(fx.inspect("forger").await, ("forger".into(), CacheOutcome::Hit));

    // A changed byte anywhere in the artifact is refused too.
    let mut bytes = fs::read(&echo).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&echo, &bytes).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Rejected);
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);
}

#[tokio::test]
async fn a_missing_or_replaced_key_only_means_compiling_again() {
    let fx = Fixture::new();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Miss);
    let key = fx.key();
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "created private");
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);

    // Removed: a new key is made; the old entry does not verify under it.
    fs::remove_file(&key).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Rejected);
    assert!(key.exists(), "a new key was created");
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);

    // Replaced by another valid key: the same.
    fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Rejected);
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);
    assert_eq!(fs::read_to_string(&key).unwrap(), format!("{}\n", "5a".repeat(32)), "a valid key is kept");
}

#[tokio::test]
async fn a_key_that_is_not_private_or_not_a_key_turns_the_cache_off() {
    let fx = Fixture::new();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Miss);
    let key = fx.key();
    let good = fs::read(&key).unwrap();

    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Disabled, "readable by others");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();

    let elsewhere = fx.cache.with_file_name("elsewhere.key");
    fs::rename(&key, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Disabled, "a symlink");
    fs::remove_file(&key).unwrap();

    fs::write(&key, "not a key\n").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Disabled, "not a key");
    assert_eq!(fs::read_to_string(&key).unwrap(), "not a key\n", "never overwritten");

    // A key configured inside the cache directory is refused.
    let inside = SandboxConfig { cache_key: Some(fx.cache.join("my.key")), ..fx.config() };
    assert_eq!(echo_adds(inside).await, CacheOutcome::Disabled);
    assert!(!fx.cache.join("my.key").exists());

    // A configured key elsewhere works like the default one.
    fs::write(&key, &good).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);
    let chosen = SandboxConfig { cache_key: Some(elsewhere.clone()), ..fx.config() };
    assert_eq!(echo_adds(chosen).await, CacheOutcome::Hit, "the same key, configured by path");
}

#[tokio::test]
async fn entries_others_could_have_written_are_never_loaded() {
    let fx = Fixture::new();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Miss);
    let entry = fx.entry("echo");
    fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Rejected, "writable by others");
    assert_eq!(fs::metadata(&entry).unwrap().permissions().mode() & 0o777, 0o600, "replaced");

    // A symlink to a valid entry is not followed; the link is replaced by a real entry.
    let real = fx.cache.with_file_name("real.tgc");
    fs::rename(&entry, &real).unwrap();
    std::os::unix::fs::symlink(&real, &entry).unwrap();
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Rejected, "a symlink");
    assert!(!fs::symlink_metadata(&entry).unwrap().file_type().is_symlink());
    assert_eq!(echo_adds(fx.config()).await, CacheOutcome::Hit);
}
