// A chakong bank agency in Node.js, written from protos/ and docs/agencies.md alone,
// the way an outside bank's developers would. It keeps everything in memory: it is
// a reference for the contract (chakong.bank.v1.Bank), not a ledger to run a bank on.
//
// Environment: AGENCY_ID (required), GRPC_ADDRESS (default 127.0.0.1:50090),
// TLS_CERT, TLS_KEY, TLS_CA (mutual TLS; or INSECURE_PLAINTEXT=1),
// AGENCY_TEST_MODE=1 (serve chakong.testing.v1.AgencyTesting for `chakong conform`),
// FIXTURES=file.json (a LoadFixturesRequest in proto3 JSON, loaded at start).
// Prints `READY {"grpc": "host:port", ...}` once listening.
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { HealthImplementation } = require("grpc-health-check");
const { ReflectionService } = require("@grpc/reflection");

const ROOT = path.resolve(__dirname, "..", "..");
const REGIONS = require("./regions.json"); // GB/T 2260 county codes and the years each existed
const status = grpc.status;

// ---------------------------------------------------------------- the contract

const protoFiles = ["protos/bank/v1/bank.proto", "protos/testing/v1/testing.proto"];
const definition = protoLoader.loadSync(protoFiles, {
  includeDirs: [ROOT], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition);
const BANK_SERVICE = "chakong.bank.v1.Bank";
const TESTING_SERVICE = "chakong.testing.v1.AgencyTesting";
const GATEWAY_IDENTITY = "spiffe://chakong/gateway";

// ---------------------------------------------------------------- settings

const env = process.env;
const agencyId = env.AGENCY_ID || "";
if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(agencyId)) fail(`AGENCY_ID=${JSON.stringify(agencyId)}: 1 to 32 of a-z, 0-9, '-'`);
const address = env.GRPC_ADDRESS || "127.0.0.1:50090";
const testMode = env.AGENCY_TEST_MODE === "1";
const plaintext = env.INSECURE_PLAINTEXT === "1";

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- time

let clockOffsetUs = 0;
const nowUs = () => Date.now() * 1000 + clockOffsetUs;
const tsUs = (ts) => (ts ? Number(ts.seconds || 0) * 1e6 + Math.floor((ts.nanos || 0) / 1000) : 0);
const hasTs = (ts) => !!ts && (Number(ts.seconds || 0) !== 0 || (ts.nanos || 0) !== 0);
const ts = (us) => (us === null || us === undefined ? null : { seconds: Math.floor(us / 1e6), nanos: (us % 1e6) * 1000 });

function addYears(us, years) {
  const d = new Date(Math.floor(us / 1000));
  const year = d.getUTCFullYear() + years;
  const lastDay = new Date(Date.UTC(year, d.getUTCMonth() + 1, 0)).getUTCDate();
  const later = Date.UTC(year, d.getUTCMonth(), Math.min(d.getUTCDate(), lastDay), d.getUTCHours(),
    d.getUTCMinutes(), d.getUTCSeconds());
  return later * 1000 + (us % 1e6);
}

// ---------------------------------------------------------------- errors

class Refusal extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
class Invalid extends Refusal {
  constructor(field, rule) { super(status.INVALID_ARGUMENT, `${field}: ${rule}`); }
}

// ---------------------------------------------------------------- validation

const TOKEN = /^[0-9A-Za-z_.:-]{1,128}$/;
const CASE_NUMBER = /^[(（](\d{4})[)）][\u4e00-\u9fff]\d{2,4}执[恢保异复]?(\d{1,6})号$/;
const RIC_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

function checkResidentId(v) {
  if (v.length !== 18) return "must be 18 characters";
  if (!/^\d{17}[\dX]$/.test(v)) return "must be 17 digits followed by a digit or X";
  const sum = RIC_WEIGHTS.reduce((s, w, i) => s + w * Number(v[i]), 0);
  if ("10X98765432"[sum % 11] !== v[17]) return "check character does not match (ISO 7064 MOD 11-2)";
  const [y, m, d] = [Number(v.slice(6, 10)), Number(v.slice(10, 12)), Number(v.slice(12, 14))];
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d || y < 1900) {
    return "birth date or region code is not valid";
  }
  // The region must have existed in the birth year (GB/T 2260).
  const ranges = REGIONS[v.slice(0, 6)];
  if (!ranges || !ranges.some(([start, end]) => (start === null || y >= start) && (end === null || y <= end))) {
    return "birth date or region code is not valid";
  }
  return null;
}

function checkCreditCode(v) {
  if (v.length !== 18) return "must be 18 characters";
  if (![...v].every((c) => USCC.includes(c)) || !/^..\d{6}/.test(v)) {
    return "must be 8 digits then characters from 0-9 and A-Y without I, O, S, V, Z";
  }
  const sum = USCC_WEIGHTS.reduce((s, w, i) => s + w * USCC.indexOf(v[i]), 0);
  if (USCC[(31 - (sum % 31)) % 31] !== v[17]) return "check character does not match (GB 32100 MOD 31)";
  return null;
}

const ID_CHECKS = {
  SUBJECT_TYPE_RESIDENT_ID: checkResidentId,
  SUBJECT_TYPE_CREDIT_CODE: checkCreditCode,
  SUBJECT_TYPE_PASSPORT: (v) => (/^[A-Z0-9]{5,17}$/.test(v) ? null : "must be 5 to 17 upper-case letters or digits"),
};

function requireText(value, field, max) {
  if (!value || !value.trim()) throw new Invalid(field, "is required");
  if (value.length > max) throw new Invalid(field, `must be at most ${max} characters`);
  if (value !== value.trim()) throw new Invalid(field, "must not start or end with white space");
}

function validateSubject(subject, field, requireName) {
  const check = subject && ID_CHECKS[subject.type];
  if (!check) throw new Invalid(`${field}.type`, "must be RESIDENT_ID, CREDIT_CODE or PASSPORT");
  if (!subject.id_number) throw new Invalid(`${field}.id_number`, "is required");
  const problem = check(subject.id_number);
  if (problem) throw new Invalid(`${field}.id_number`, problem);
  if (requireName || subject.name) requireText(subject.name, `${field}.name`, 100);
}

function validateCase(c) {
  if (!c || !c.case_number) throw new Invalid("case.case_number", "is required");
  if (!CASE_NUMBER.test(c.case_number)) throw new Invalid("case.case_number", "must look like (2024)皖01执123号");
  if (!/^[0-9A-Z]{3,12}$/.test(c.court_code)) throw new Invalid("case.court_code", "must be 3 to 12 digits or upper-case letters");
  if (!/^[0-9A-Za-z_.-]{1,32}$/.test(c.executor_id)) throw new Invalid("case.executor_id", "must be 1 to 32 letters, digits, '_', '.' or '-'");
  requireText(c.document_number, "case.document_number", 64);
}

function validateAmount(value, field) {
  if (!(value > 0)) throw new Invalid(field, "must be a positive number of fen");
  if (value > 1e15) throw new Invalid(field, "must be at most 1000000000000000 fen");
}

function checkExpiry(expiresAt, now) {
  if (!hasTs(expiresAt)) throw new Invalid("expires_at", "is required");
  const us = tsUs(expiresAt);
  if (us <= now) throw new Invalid("expires_at", "must be in the future");
  if (us > addYears(now, 1)) throw new Invalid("expires_at", "must be at most 1 year(s) from now (statutory maximum)");
  return us;
}

// ---------------------------------------------------------------- the register

let subjects, accounts, freezes, deductions, idempotency, sequence;
function reset() {
  subjects = new Map(); accounts = new Map(); freezes = new Map(); deductions = new Map(); idempotency = new Map();
  sequence = 0;
  clockOffsetUs = 0;
}
reset();

const ACTIVE = "HOLD_STATE_ACTIVE", QUEUED = "HOLD_STATE_QUEUED", RELEASED = "HOLD_STATE_RELEASED";
const LAPSED = "HOLD_STATE_LAPSED", DEDUCTED = "HOLD_STATE_DEDUCTED";
const newId = (prefix) => `${prefix}-${agencyId}-${(++sequence).toString().padStart(10, "0")}`;
const onAccount = (number, ...states) => [...freezes.values()]
  .filter((f) => f.account_number === number && states.includes(f.state)).sort((a, b) => a.seq - b.seq);
const heldOn = (number) => onAccount(number, ACTIVE).reduce((s, f) => s + f.frozen_fen, 0);

function loadFixtures(request) {
  request.subjects.forEach((s, i) => validateSubject(s, `subjects[${i}]`, true));
  const known = new Set(request.subjects.map((s) => s.id_number));
  request.accounts.forEach((fixture, i) => {
    const a = fixture.account;
    if (!known.has(fixture.owner_id_number)) throw new Invalid(`accounts[${i}].owner_id_number`, "is not among subjects");
    requireText(a.account_number, `accounts[${i}].account.account_number`, 64);
    if (accounts.has(a.account_number)) throw new Refusal(status.ALREADY_EXISTS, `account ${a.account_number} already loaded`);
    if (!/^[A-Z]{3}$/.test(a.currency)) throw new Invalid(`accounts[${i}].account.currency`, "must be 3 upper-case letters (ISO 4217)");
  });
  for (const s of request.subjects) if (!subjects.has(s.id_number)) subjects.set(s.id_number, { type: s.type, name: s.name });
  for (const { owner_id_number: owner, account: a } of request.accounts) {
    accounts.set(a.account_number, {
      account_number: a.account_number, owner,
      type: a.type === "ACCOUNT_TYPE_UNSPECIFIED" ? "ACCOUNT_TYPE_DEMAND_DEPOSIT" : a.type,
      currency: a.currency, balance_fen: a.balance_fen,
      status: a.status === "ACCOUNT_STATUS_UNSPECIFIED" ? "ACCOUNT_STATUS_NORMAL" : a.status,
      branch: a.branch, opened_on: a.opened_on || "2020-01-01",
    });
  }
  return request.accounts.length;
}

// A queued freeze's period runs from when it takes effect, capped at a year from then.
function promote(number, atUs) {
  const account = accounts.get(number);
  let held = heldOn(number);
  let available = account.balance_fen - held;
  for (const f of onAccount(number, QUEUED)) {
    if (available <= 0 && held > 0) break;
    const frozen = Math.min(f.requested_fen, available);
    Object.assign(f, {
      state: ACTIVE, frozen_fen: frozen, shortfall_fen: f.requested_fen - frozen, effective_at_us: atUs,
      expires_at_us: Math.min(atUs + f.period_us, addYears(atUs, 1)),
    });
    available -= frozen; held += frozen;
  }
}

// Lapse what has expired, each at its own expiry, earliest first, promoting the queue at that instant.
function settle(now) {
  for (;;) {
    const due = [...freezes.values()].filter((f) => f.state === ACTIVE && f.expires_at_us <= now)
      .sort((a, b) => a.expires_at_us - b.expires_at_us || a.seq - b.seq);
    if (!due.length) return;
    const moment = due[0].expires_at_us;
    const accountsHit = new Set();
    for (const f of due.filter((x) => x.expires_at_us === moment)) {
      Object.assign(f, { state: LAPSED, frozen_fen: 0, ended_at_us: moment });
      accountsHit.add(f.account_number);
    }
    for (const number of accountsHit) promote(number, moment);
  }
}

function accountOf(number, holder) {
  const account = accounts.get(number);
  if (!account) throw new Refusal(status.NOT_FOUND, `account_number: no account ${number} at this institution`);
  if (account.owner !== holder.id_number) throw new Refusal(status.FAILED_PRECONDITION, "account_number: account does not belong to subject");
  const registered = subjects.get(holder.id_number);
  if (!registered || registered.type !== holder.type || registered.name !== holder.name) {
    throw new Refusal(status.FAILED_PRECONDITION, "subject: the name or document type does not match what is registered for this ID number");
  }
  return account;
}

function freezeFor(freezeId, c, action) {
  const f = freezes.get(freezeId);
  if (!f) throw new Refusal(status.NOT_FOUND, `freeze_id: no freeze ${freezeId} at this institution`);
  if (f.court_code !== c.court_code) throw new Refusal(status.PERMISSION_DENIED, `freeze ${freezeId} was placed by another court; only that court may ${action} it`);
  if (f.case_number !== c.case_number) throw new Refusal(status.PERMISSION_DENIED, `freeze ${freezeId} was placed for case ${f.case_number}; act on it under that case`);
  return f;
}

function freezeMessage(f) {
  const queued = onAccount(f.account_number, QUEUED);
  return {
    freeze_id: f.freeze_id, account_number: f.account_number, case_number: f.case_number, court_code: f.court_code,
    state: f.state, requested_fen: f.requested_fen, frozen_fen: f.frozen_fen, shortfall_fen: f.shortfall_fen,
    deducted_fen: f.deducted_fen, queue_position: f.state === QUEUED ? queued.indexOf(f) + 1 : 0,
    registered_at: ts(f.registered_at_us), effective_at: ts(f.effective_at_us), expires_at: ts(f.expires_at_us),
    ended_at: ts(f.ended_at_us),
  };
}

// ---------------------------------------------------------------- exactly once per key

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value === undefined ? null : value);
}

// INVALID_ARGUMENT is never recorded; every other refusal is, and replayed.
function exactlyOnce(method, request, apply) {
  const key = request.idempotency_key;
  const digest = canonical({ ...request, idempotency_key: "" });
  const stored = idempotency.get(key);
  if (stored) {
    if (stored.method !== method || stored.digest !== digest) {
      throw new Refusal(status.ALREADY_EXISTS, `idempotency_key: already used for a different request (${stored.method}); use a new key for a new request`);
    }
    if (stored.error) throw new Refusal(stored.error.code, stored.error.message);
    return stored.response;
  }
  // Work on a copy, so a refusal leaves nothing half done.
  const snapshot = { accounts: structuredClone(accounts), freezes: structuredClone(freezes), deductions: structuredClone(deductions), sequence };
  try {
    const response = apply();
    idempotency.set(key, { method, digest, response });
    return response;
  } catch (error) {
    ({ accounts, freezes, deductions, sequence } = snapshot);
    if (error instanceof Refusal && error.code !== status.INVALID_ARGUMENT) {
      idempotency.set(key, { method, digest, error: { code: error.code, message: error.message } });
    }
    throw error;
  }
}

// ---------------------------------------------------------------- the Bank service

function control(method, validate, apply) {
  return (call, callback) => {
    const request = call.request;
    try {
      if (!TOKEN.test(request.idempotency_key || "")) throw new Invalid("idempotency_key", "must be 1 to 128 letters, digits or '_.:-'");
      validateCase(request.case);
      validate(request);
      const now = nowUs();
      const response = exactlyOnce(method, request, () => { settle(now); return apply(request, now); });
      log(`${method} key=${request.idempotency_key} x-request-id=${call.metadata.get("x-request-id")[0] || "-"}: OK`);
      callback(null, response);
    } catch (error) {
      answerError(method, error, callback);
    }
  };
}

function answerError(method, error, callback) {
  if (!(error instanceof Refusal)) {
    log(`${method}: internal error ${error.stack}`);
    return callback({ code: status.INTERNAL, details: "internal error" });
  }
  log(`${method}: ${Object.keys(status).find((k) => status[k] === error.code)} ${error.message}`);
  callback({ code: error.code, details: error.message });
}

const bank = {
  QueryAccounts(call, callback) {
    const { request_id: requestId, case: c, subject } = call.request;
    try {
      if (requestId && !TOKEN.test(requestId)) throw new Invalid("request_id", "must be 1 to 128 letters, digits or '_.:-'");
      validateCase(c);
      validateSubject(subject, "subject", false);
      settle(nowUs());
      const registered = subjects.get(subject.id_number);
      let found = [];
      if (registered) {
        if ((subject.name && subject.name !== registered.name) || subject.type !== registered.type) {
          throw new Refusal(status.FAILED_PRECONDITION, "subject: the name or document type does not match what is registered for this ID number (证件号码与姓名不一致)");
        }
        found = [...accounts.values()].filter((a) => a.owner === subject.id_number)
          .sort((a, b) => a.opened_on.localeCompare(b.opened_on) || a.account_number.localeCompare(b.account_number));
      }
      if (found.length > 1000) {
        throw new Refusal(status.OUT_OF_RANGE, `subject: holds ${found.length} accounts here, more than the 1000 one answer may carry`);
      }
      log(`query ${requestId || "-"}: ${found.length} account(s)`);
      callback(null, {
        institution_id: agencyId,
        accounts: found.map((a) => {
          const frozen = heldOn(a.account_number);
          return {
            account_number: a.account_number, type: a.type, currency: a.currency, balance_fen: a.balance_fen,
            available_balance_fen: a.balance_fen - frozen, frozen_fen: frozen, status: a.status, branch: a.branch,
            opened_on: a.opened_on, freezes: onAccount(a.account_number, ACTIVE, QUEUED).map(freezeMessage),
          };
        }),
      });
    } catch (error) {
      answerError("QueryAccounts", error, callback);
    }
  },

  Freeze: control("Freeze", (r) => {
    validateSubject(r.subject, "subject", true);
    requireText(r.account_number, "account_number", 64);
    validateAmount(r.amount_fen, "amount_fen");
    if (!hasTs(r.expires_at)) throw new Invalid("expires_at", "is required");
  }, (r, now) => {
    const account = accountOf(r.account_number, r.subject);
    if (account.status === "ACCOUNT_STATUS_CLOSED") throw new Refusal(status.FAILED_PRECONDITION, `account_number: account ${r.account_number} is closed`);
    const expiresUs = checkExpiry(r.expires_at, now);
    const existing = onAccount(r.account_number, ACTIVE, QUEUED)
      .find((f) => f.case_number === r.case.case_number && f.court_code === r.case.court_code);
    if (existing) throw new Refusal(status.ALREADY_EXISTS, `case ${r.case.case_number} already has freeze ${existing.freeze_id} on account ${r.account_number}; renew or release it instead`);
    const held = heldOn(r.account_number);
    const available = account.balance_fen - held;
    const queue = onAccount(r.account_number, QUEUED).length > 0 || (available <= 0 && held > 0);
    const frozen = queue ? 0 : Math.min(r.amount_fen, available);
    const f = {
      freeze_id: newId("fz"), account_number: r.account_number, case_number: r.case.case_number,
      court_code: r.case.court_code, state: queue ? QUEUED : ACTIVE, requested_fen: r.amount_fen,
      frozen_fen: frozen, shortfall_fen: queue ? 0 : r.amount_fen - frozen, deducted_fen: 0, seq: sequence,
      registered_at_us: now, effective_at_us: queue ? null : now, expires_at_us: expiresUs, ended_at_us: null,
      period_us: expiresUs - now,
    };
    freezes.set(f.freeze_id, f);
    return freezeMessage(f);
  }),

  RenewFreeze: control("RenewFreeze", (r) => {
    requireText(r.freeze_id, "freeze_id", 64);
    if (!hasTs(r.expires_at)) throw new Invalid("expires_at", "is required");
  }, (r, now) => {
    const f = freezeFor(r.freeze_id, r.case, "renew");
    if (f.state !== ACTIVE) throw new Refusal(status.FAILED_PRECONDITION, `freeze ${f.freeze_id} is not active (${f.state}); only an active freeze can be renewed`);
    const expiresUs = checkExpiry(r.expires_at, now);
    if (expiresUs <= f.expires_at_us) throw new Refusal(status.FAILED_PRECONDITION, "expires_at: must be later than the current expiry");
    f.expires_at_us = expiresUs;
    return freezeMessage(f);
  }),

  ReleaseFreeze: control("ReleaseFreeze", (r) => {
    requireText(r.freeze_id, "freeze_id", 64);
    if (r.amount_fen !== 0) validateAmount(r.amount_fen, "amount_fen");
  }, (r, now) => {
    const f = freezeFor(r.freeze_id, r.case, "release");
    if (f.state !== ACTIVE && f.state !== QUEUED) throw new Refusal(status.FAILED_PRECONDITION, `freeze ${f.freeze_id} has already ended (${f.state}); nothing to release`);
    if (r.amount_fen === 0 || (f.state === ACTIVE && r.amount_fen === f.frozen_fen)) {
      Object.assign(f, { state: RELEASED, frozen_fen: 0, ended_at_us: now });
    } else if (f.state === QUEUED) {
      throw new Refusal(status.FAILED_PRECONDITION, `amount_fen: freeze ${f.freeze_id} is queued and holds nothing yet; release it whole (amount_fen 0)`);
    } else if (r.amount_fen < f.frozen_fen) {
      f.frozen_fen -= r.amount_fen;
    } else {
      throw new Refusal(status.FAILED_PRECONDITION, `amount_fen: freeze ${f.freeze_id} holds ${f.frozen_fen} fen; release at most that`);
    }
    promote(f.account_number, now);
    return freezeMessage(f);
  }),

  Deduct: control("Deduct", (r) => {
    if (!r.source) throw new Invalid("source", "set freeze_id, or account_number to deduct from the available balance");
    requireText(r[r.source], r.source, 64);
    validateAmount(r.amount_fen, "amount_fen");
    for (const field of ["bank_name", "account_number", "account_name"]) {
      requireText((r.court_account || {})[field], `court_account.${field}`, 100);
    }
    if (r.source === "account_number" && !r.subject) throw new Invalid("subject", "is required to deduct from an account");
    if (r.subject) validateSubject(r.subject, "subject", true);
  }, (r, now) => {
    let f;
    if (r.source === "freeze_id") {
      f = freezeFor(r.freeze_id, r.case, "deduct from");
      if (r.subject) accountOf(f.account_number, r.subject);
      if (f.state !== ACTIVE) throw new Refusal(status.FAILED_PRECONDITION, `freeze ${f.freeze_id} is not active (${f.state}); only an active freeze can be deducted`);
      if (r.amount_fen > f.frozen_fen) throw new Refusal(status.FAILED_PRECONDITION, `amount_fen: only ${f.frozen_fen} fen remains frozen on freeze ${f.freeze_id}; deduct at most that`);
      f.frozen_fen -= r.amount_fen;
      f.deducted_fen += r.amount_fen;
      if (f.frozen_fen === 0) Object.assign(f, { state: DEDUCTED, ended_at_us: now });
    } else {
      const account = accountOf(r.account_number, r.subject);
      const available = account.balance_fen - heldOn(r.account_number);
      if (r.amount_fen > available) throw new Refusal(status.FAILED_PRECONDITION, `amount_fen: only ${Math.max(available, 0)} fen is available (unfrozen) on account ${r.account_number}; deduct at most that`);
      f = {
        freeze_id: newId("fz"), account_number: r.account_number, case_number: r.case.case_number,
        court_code: r.case.court_code, state: DEDUCTED, requested_fen: r.amount_fen, frozen_fen: 0, shortfall_fen: 0,
        deducted_fen: r.amount_fen, seq: sequence, registered_at_us: now, effective_at_us: now, expires_at_us: now,
        ended_at_us: now, period_us: 0,
      };
      freezes.set(f.freeze_id, f);
    }
    accounts.get(f.account_number).balance_fen -= r.amount_fen;
    const d = {
      deduction_id: newId("dd"), account_number: f.account_number, freeze_id: f.freeze_id,
      case_number: r.case.case_number, court_code: r.case.court_code, amount_fen: r.amount_fen,
      court_account: r.court_account, deducted_at: ts(now),
    };
    deductions.set(d.deduction_id, d);
    if (f.state === DEDUCTED) promote(f.account_number, now);
    return { ...d, freeze: freezeMessage(f) };
  }),
};

// ---------------------------------------------------------------- test mode

const testing = {
  Reset(call, callback) {
    reset();
    log("test mode: reset to empty, clock back to real time");
    callback(null, { now: ts(nowUs()) });
  },
  LoadFixtures(call, callback) {
    try {
      const records = loadFixtures(call.request);
      callback(null, { subjects: call.request.subjects.length, records });
    } catch (error) {
      answerError("LoadFixtures", error, callback);
    }
  },
  AdvanceClock(call, callback) {
    const by = call.request.by || {};
    const us = Number(by.seconds || 0) * 1e6 + Math.floor((by.nanos || 0) / 1000);
    if (!(us > 0) || us > 10 * 366 * 86400e6) return callback({ code: status.INVALID_ARGUMENT, details: "by: must be positive and at most 10 years" });
    clockOffsetUs += us;
    callback(null, { now: ts(nowUs()) });
  },
};

// ---------------------------------------------------------------- identity

// Only the gateway may call the bank (and the test service); health is open to any client of the CA.
function gatewayOnly(implementation) {
  if (plaintext) return implementation;
  const guarded = {};
  for (const [name, handler] of Object.entries(implementation)) {
    guarded[name] = (call, callback) => {
      const peer = call.getAuthContext && call.getAuthContext();
      const names = (peer && peer.sslPeerCertificate && peer.sslPeerCertificate.subjectaltname) || "";
      const uris = names.split(",").map((s) => s.trim()).filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
      if (!uris.includes(GATEWAY_IDENTITY)) {
        log(`refused ${name}: client certificate names ${uris.join(", ") || "no URI"}`);
        return callback({ code: status.UNAUTHENTICATED, details: `client certificate (${uris.join(", ") || "no URI name"}) is not allowed to call this service` });
      }
      return handler(call, callback);
    };
  }
  return guarded;
}

// ---------------------------------------------------------------- serve

function log(message) {
  process.stderr.write(`${new Date().toISOString()} ${agencyId} ${message}\n`);
}

function credentials() {
  if (plaintext) {
    log("INSECURE PLAINTEXT: development only");
    return grpc.ServerCredentials.createInsecure();
  }
  const files = ["TLS_CERT", "TLS_KEY", "TLS_CA"].map((name) => env[name] || fail(`${name} is not set (or INSECURE_PLAINTEXT=1)`));
  const [cert, key, ca] = files.map((f) => fs.readFileSync(f));
  // checkClientCertificate: a client must present a certificate from the court's CA.
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

function main() {
  if (env.FIXTURES) loadFixtures(JSON.parse(fs.readFileSync(env.FIXTURES, "utf8")));
  const server = new grpc.Server();
  server.addService(loaded.chakong.bank.v1.Bank.service, gatewayOnly(bank));
  const services = [BANK_SERVICE];
  if (testMode) {
    log("TEST MODE: chakong.testing.v1.AgencyTesting can wipe this agency and move its clock; never in production");
    server.addService(loaded.chakong.testing.v1.AgencyTesting.service, gatewayOnly(testing));
    services.push(TESTING_SERVICE);
  }
  // SERVING for "" (the whole server, what the gateway probes) and for the service name.
  const health = new HealthImplementation({ "": "SERVING", [BANK_SERVICE]: "SERVING" });
  health.addToServer(server);
  new ReflectionService(definition, { services }).addToServer(server);
  server.bindAsync(address, credentials(), (error, port) => {
    if (error) fail(`cannot listen on ${address}: ${error.message}`);
    const host = address.slice(0, address.lastIndexOf(":"));
    process.stdout.write(`READY ${JSON.stringify({ service: "bank", agency_id: agencyId, grpc: `${host}:${port}`, test_mode: testMode ? "1" : "0" })}\n`);
  });
  const stop = () => {
    health.setStatus("", "NOT_SERVING");
    health.setStatus(BANK_SERVICE, "NOT_SERVING");
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
