// The engine's state: each therapist's lifecycle ledger (sealed), appointments keyed by the ledger's
// stable key, clients found again by their ledger key, and the risk signals worked out per client.
// Never edit this file once it has landed: add a new migration instead (migrate.ts checks).

export const name = '0002_engine';

export const sql = /* sql */ `
-- The domain's picture of one therapist's sessions (lifecycle.ts Ledger), sealed: it holds client
-- names and emails. Rounds are applied to it under a row lock, in the transaction of the snapshots.
CREATE TABLE ledgers (
  therapist_id    uuid PRIMARY KEY REFERENCES therapists (id) ON DELETE CASCADE,
  state           text NOT NULL,
  rounds          integer NOT NULL DEFAULT 0,
  -- When the next scheduled session ends (its attendance is presumed then); null when none or off.
  next_presume_at timestamptz,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX ledgers_presume ON ledgers (next_presume_at) WHERE next_presume_at IS NOT NULL;

-- An appointment is the ledger's appointment: it keeps its key when its event moves calendars.
ALTER TABLE appointments ADD COLUMN ledger_key text;
ALTER TABLE appointments DROP CONSTRAINT appointments_calendar_id_event_id_key;
CREATE UNIQUE INDEX appointments_ledger_key ON appointments (therapist_id, ledger_key);
CREATE INDEX appointments_event ON appointments (calendar_id, event_id);

-- A client the engine recognised: its ledger key ("email:..." or "title:..."), sealed, and found
-- again by its keyed hash.
ALTER TABLE clients ADD COLUMN ledger_key text;
ALTER TABLE clients ADD COLUMN ledger_key_hash text;
CREATE UNIQUE INDEX clients_ledger_key ON clients (therapist_id, ledger_key_hash);

-- Risk signals (figures.ts): a client not rebooked, past their usual gap, two cancellations in a
-- row, a no-show, a series ended. Keyed by client, kind and since: the same signal is one row.
CREATE TABLE client_signals (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  therapist_id uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  client_id    uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  key          text NOT NULL UNIQUE,
  kind         text NOT NULL,
  since        timestamptz NOT NULL,
  detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
  recorded_at  timestamptz NOT NULL,
  cleared_at   timestamptz
);
CREATE INDEX client_signals_open ON client_signals (therapist_id, client_id) WHERE cleared_at IS NULL;

-- Which fact an action came from (an appointment transition's key or a signal's key), and when its
-- current holder started the call (a claim after a crash asks: was the call started at all?).
ALTER TABLE actions ADD COLUMN fact_key text;
ALTER TABLE actions ADD COLUMN started_at timestamptz;
CREATE INDEX actions_fact ON actions (fact_key) WHERE fact_key IS NOT NULL;
`;
