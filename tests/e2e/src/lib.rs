//! orglink's end-to-end suites live in `tests/`: each starts what it needs (moto, the local
//! stack from `infra/template.yaml`, the sandbox) through `orglink-harness` and drives the
//! functions' real handlers over the real AWS adapters. `tests/intake*.rs`: the intake
//! function; `tests/worker*.rs`: the sync worker.
