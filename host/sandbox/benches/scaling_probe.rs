//! TEMPORARY diagnostic (to be deleted): why do 2 concurrent calls not scale?
#![allow(clippy::all)]
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod fb {
    wasmtime::component::bindgen!({ path: "../../wit", world: "plugin", exports: { default: async } });
}
use fb::PluginPre;
use fb::exports::tollgate::plugin::tool::CallContext as Ctx;

struct St {
    wasi: WasiCtx,
    table: ResourceTable,
}
impl WasiView for St {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

#[derive(Clone, Copy, Debug)]
enum V {
    Pool,
    PoolNoCow,
    PoolKeepResident,
    PoolBatch,
    PoolAll,
    OnDemand,
    Reuse,
}

fn engine(v: V) -> Engine {
    let n: u32 = 256;
    let mut cfg = Config::new();
    cfg.wasm_component_model(true).consume_fuel(true).epoch_interruption(true).max_wasm_stack(512 << 10);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 20)
        .total_memories(n * 4)
        .total_tables(n * 20)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(64)
        .max_memory_size(4 << 30)
        .table_elements(50_000)
        .max_component_instance_size(8 << 20)
        .max_core_instance_size(8 << 20);
    match v {
        V::PoolNoCow => {
            cfg.memory_init_cow(false);
        }
        V::PoolKeepResident => {
            pool.linear_memory_keep_resident(2 << 20).table_keep_resident(1 << 20);
        }
        V::PoolBatch => {
            pool.decommit_batch_size(64);
        }
        V::PoolAll => {
            cfg.memory_init_cow(false);
            pool.linear_memory_keep_resident(2 << 20).table_keep_resident(1 << 20);
        }
        _ => {}
    }
    if !matches!(v, V::OnDemand) {
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&cfg).unwrap()
}

fn main() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/plugins/echo.wasm")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // native CPU scaling
    for threads in [1, 2, 1, 2] {
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    let mut x = 1u64;
                    while t.elapsed() < Duration::from_millis(700) {
                        for _ in 0..1000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        n += 1;
                    }
                    std::hint::black_box(x);
                    n
                })
            })
            .collect();
        let tot: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        println!("native {threads} threads: {:.0} kops/s", tot as f64 / t.elapsed().as_secs_f64() / 1e3);
    }
    let only: Option<String> = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let variants = [V::Pool, V::PoolNoCow, V::PoolKeepResident, V::PoolBatch, V::PoolAll, V::OnDemand, V::Reuse];
    let mut setups = vec![];
    for v in variants {
        if let Some(o) = &only {
            if !format!("{v:?}").eq_ignore_ascii_case(o) {
                continue;
            }
        }
        let e = engine(v);
        let c = Component::new(&e, &bytes).unwrap();
        let mut l = Linker::<St>::new(&e);
        wasmtime_wasi::p2::add_to_linker_async(&mut l).unwrap();
        l.instance("tollgate:plugin/types@0.1.0").unwrap();
        let pre = PluginPre::new(l.instantiate_pre(&c).unwrap()).unwrap();
        setups.push((v, e, pre));
    }
    for rep in 0..3 {
        for (v, e, pre) in &setups {
            for (tasks, input) in
                [(1, r#"{"msg":"hello"}"#), (2, r#"{"msg":"hello"}"#), (1, r#"{"n":3000000}"#), (2, r#"{"n":3000000}"#)]
            {
                let tool = if input.contains("\"n\"") { "slow_sum" } else { "echo" };
                if tool == "slow_sum" && !matches!(v, V::Pool) {
                    continue;
                }
                let deadline = Instant::now() + Duration::from_millis(800);
                let start = Instant::now();
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        let (e, pre, v) = (e.clone(), pre.clone(), *v);
                        rt.spawn(async move {
                            let ctx = Ctx { run_id: "r".into(), call_id: "c".into(), idempotency_key: "k".into() };
                            let mk = || {
                                let mut s = Store::new(
                                    &e,
                                    St { wasi: WasiCtx::builder().build(), table: ResourceTable::new() },
                                );
                                s.set_fuel(u64::MAX / 4).unwrap();
                                s.set_epoch_deadline(1 << 40);
                                s
                            };
                            let mut n = 0u64;
                            let tid = format!("{:?}", std::thread::current().id());
                            if matches!(v, V::Reuse) {
                                let mut s = mk();
                                let i = pre.instantiate_async(&mut s).await.unwrap();
                                while Instant::now() < deadline {
                                    i.tollgate_plugin_tool()
                                        .call_call(&mut s, tool, input, &ctx)
                                        .await
                                        .unwrap()
                                        .unwrap();
                                    n += 1;
                                }
                            } else {
                                while Instant::now() < deadline {
                                    let mut s = mk();
                                    let i = pre.instantiate_async(&mut s).await.unwrap();
                                    i.tollgate_plugin_tool()
                                        .call_call(&mut s, tool, input, &ctx)
                                        .await
                                        .unwrap()
                                        .unwrap();
                                    n += 1;
                                }
                            }
                            (n, tid)
                        })
                    })
                    .collect();
                let mut tot = 0;
                let mut tids = vec![];
                for h in hs {
                    let (n, t) = rt.block_on(h).unwrap();
                    tot += n;
                    tids.push(t);
                }
                println!(
                    "rep{rep} {v:<16?} {tool:<8} {tasks} tasks: {:>9.0} calls/s  threads {tids:?}",
                    tot as f64 / start.elapsed().as_secs_f64()
                );
            }
        }
    }
    let _ = Arc::new(());
}
