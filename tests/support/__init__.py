"""Helpers shared by the test modules (functions, classes, constants; no fixtures).

Fixtures shared by more than one test module live in tests/conftest.py; a test
module imports helpers from here only, never from another test module
(tests/test_layout.py checks that).

- harness: start services as real subprocesses on port 0 (ServiceProcess, REPO)
- faultproxy: a fault-injecting TCP proxy (FaultProxy)
- auth: executor tokens and auth headers, the register-case body
- postgres: the test PostgreSQL server (PG_ADMIN_URL, pg_admin)
- agencies: mock agencies as processes, the shared agency sets (Agency, agency_env, start_all, start_agencies)
- gateway: the registry file, the showcase case and its debtor, query requests, an in-process gateway
- gateway_process: the gateway as a child process, queried over HTTP
- control: control (freeze, deduct, seal) helpers: debtors, JSON bodies, the bank's own records, control_stack
- datagen: the generated world of the default agencies and its digest
- feeds: reading an agency's hold changes feed page by page; an agency's test clock (AgencyClock, CLOCK_OFFSET_FILE)
- agency_db: an agency's DB edited behind its back: hand edits the feed records, lost events it does not (lose_event), deleted holds
"""
