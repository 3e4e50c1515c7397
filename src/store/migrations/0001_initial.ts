// The first schema: practices and therapists, connections, calendars and push channels, event
// snapshots, clients, appointments and their transitions, the outbox, the sync queue, the audit log.
// Never edit this file once it has landed: add a new migration instead (migrate.ts checks).

export const name = '0001_initial';

export const sql = /* sql */ `
CREATE TABLE practices (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE therapists (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  practice_id  uuid NOT NULL REFERENCES practices (id) ON DELETE CASCADE,
  role         text NOT NULL DEFAULT 'therapist' CHECK (role IN ('owner', 'admin', 'therapist')),
  display_name text,
  email        text,
  time_zone    text,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);
CREATE INDEX therapists_practice ON therapists (practice_id);

-- The verified platform identities a therapist signs in with: Google "sub", Microsoft "oid" + "tid".
-- Never an email: emails change and can be reassigned.
CREATE TABLE therapist_identities (
  provider     text NOT NULL CHECK (provider IN ('google', 'microsoft')),
  tenant_id    text NOT NULL DEFAULT '',
  subject      text NOT NULL,
  therapist_id uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL,
  PRIMARY KEY (provider, tenant_id, subject),
  CHECK ((provider = 'google' AND tenant_id = '') OR (provider = 'microsoft' AND tenant_id <> ''))
);
CREATE INDEX therapist_identities_therapist ON therapist_identities (therapist_id);

-- An account a therapist connected for background work (offline OAuth consent).
CREATE TABLE connections (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id      uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  provider          text NOT NULL CHECK (provider IN ('google', 'microsoft')),
  account_subject   text NOT NULL,
  account_email     text,
  scopes            text[] NOT NULL DEFAULT '{}',
  credentials       text,          -- sealed (secrets.ts): OAuth tokens or MSAL's token cache
  status            text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'needs_reauth', 'revoked')),
  status_reason     text,
  status_changed_at timestamptz NOT NULL,
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  UNIQUE (therapist_id, provider, account_subject)
);

CREATE TABLE calendars (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  connection_id        uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  therapist_id         uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  provider_calendar_id text NOT NULL,
  name                 text,
  time_zone            text,
  -- practice: everything on it is a session unless excluded; mixed: sessions found by the rules;
  -- busy_only: counts as busy time, nothing else kept; ignored: not synced.
  role                 text NOT NULL DEFAULT 'mixed' CHECK (role IN ('practice', 'mixed', 'busy_only', 'ignored')),
  cursor               text,        -- Google sync token or Graph delta link
  window_start         timestamptz, -- the synced window where the platform needs one (Graph)
  window_end           timestamptz,
  last_sync_at         timestamptz,
  last_full_sync_at    timestamptz,
  last_error           text,
  last_error_at        timestamptz,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  UNIQUE (connection_id, provider_calendar_id)
);
CREATE INDEX calendars_therapist ON calendars (therapist_id);

-- Google channels and Graph subscriptions. A calendar may have two while one replaces the other.
CREATE TABLE push_channels (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  calendar_id  uuid NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
  provider     text NOT NULL CHECK (provider IN ('google', 'microsoft')),
  channel_id   text NOT NULL,      -- Google channel id, Graph subscription id
  resource_id  text,               -- Google resource id (needed by channels.stop)
  secret_hash  text NOT NULL,      -- sha256 of the channel token / clientState we chose
  expires_at   timestamptz NOT NULL,
  status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'replaced', 'stopped')),
  created_at   timestamptz NOT NULL,
  stopped_at   timestamptz,
  UNIQUE (provider, channel_id)
);
CREATE INDEX push_channels_calendar ON push_channels (calendar_id);
CREATE INDEX push_channels_expiry ON push_channels (expires_at) WHERE status = 'active';

-- The latest version of each event we have seen. The event itself is sealed (it holds titles and
-- attendee emails); times stay in the clear so busy time can be queried.
CREATE TABLE event_snapshots (
  calendar_id         uuid NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
  event_id            text NOT NULL,
  ical_uid            text,
  series_id           text,
  original_start      text,
  status              text NOT NULL CHECK (status IN ('confirmed', 'tentative', 'cancelled', 'deleted')),
  version             text,
  platform_updated_at timestamptz,
  start_at            timestamptz,
  end_at              timestamptz,
  busy                boolean NOT NULL DEFAULT true,
  payload             text,        -- sealed normalised event; null for busy-only calendars and tombstones
  synced_at           timestamptz NOT NULL,
  PRIMARY KEY (calendar_id, event_id)
);
CREATE INDEX event_snapshots_time ON event_snapshots (calendar_id, start_at);
CREATE INDEX event_snapshots_ical ON event_snapshots (ical_uid) WHERE ical_uid IS NOT NULL;

-- A client unit (one person, or a couple or family seen together).
CREATE TABLE clients (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  display_name text,               -- sealed
  time_zone    text,
  status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);
CREATE INDEX clients_therapist ON clients (therapist_id);

-- How a client is recognised: an email of an attendee, or a name in event titles. Linked by the
-- therapist when the same person appears both ways; never merged by guessing.
CREATE TABLE client_identities (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id    uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  therapist_id uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('email', 'title')),
  value        text NOT NULL,      -- sealed
  value_hash   text NOT NULL,      -- keyed hash of the normalised value, to find it again
  linked_by    text NOT NULL DEFAULT 'auto' CHECK (linked_by IN ('auto', 'therapist')),
  created_at   timestamptz NOT NULL,
  UNIQUE (therapist_id, kind, value_hash)
);
CREATE INDEX client_identities_client ON client_identities (client_id);

CREATE TABLE appointments (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  calendar_id      uuid NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
  event_id         text NOT NULL,
  ical_uid         text,
  series_id        text,
  original_start   text,
  client_id        uuid REFERENCES clients (id) ON DELETE SET NULL,
  appointment_type text,
  state            text NOT NULL,
  start_at         timestamptz NOT NULL,
  end_at           timestamptz NOT NULL,
  time_zone        text,
  session_number   integer,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (calendar_id, event_id)
);
CREATE INDEX appointments_therapist_time ON appointments (therapist_id, start_at);
CREATE INDEX appointments_client ON appointments (client_id, start_at);

CREATE TABLE appointment_transitions (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  appointment_id uuid NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
  therapist_id   uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  key            text NOT NULL UNIQUE,   -- stable: the same input never yields a second row
  kind           text NOT NULL,
  occurred_at    timestamptz NOT NULL,
  recorded_at    timestamptz NOT NULL,
  detail         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX appointment_transitions_appointment ON appointment_transitions (appointment_id, id);
CREATE INDEX appointment_transitions_therapist ON appointment_transitions (therapist_id, occurred_at);

-- The outbox: every consequence of a fact, written with the fact, carried out with retries.
CREATE TABLE actions (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  connection_id    uuid REFERENCES connections (id) ON DELETE SET NULL,
  kind             text NOT NULL,
  idempotency_key  text NOT NULL UNIQUE,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'done', 'failed', 'unknown', 'parked', 'cancelled')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL,
  lease_expires_at timestamptz,
  claimed_by       text,
  payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
  external_ref     text,
  outcome          jsonb,
  last_error       text,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  finished_at      timestamptz
);
CREATE INDEX actions_due ON actions (next_attempt_at) WHERE status = 'pending';
CREATE INDEX actions_leased ON actions (lease_expires_at) WHERE status = 'running';
CREATE INDEX actions_therapist ON actions (therapist_id, status);
CREATE INDEX actions_connection ON actions (connection_id) WHERE connection_id IS NOT NULL;

-- "Sync calendar X", one row per calendar: a request that arrives during a sync bumps seq, so
-- finishing the older sync does not swallow it.
CREATE TABLE sync_requests (
  calendar_id      uuid PRIMARY KEY REFERENCES calendars (id) ON DELETE CASCADE,
  seq              bigint NOT NULL DEFAULT 1,
  full_resync      boolean NOT NULL DEFAULT false,
  reason           text NOT NULL,
  requested_at     timestamptz NOT NULL,
  not_before       timestamptz NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  claimed_seq      bigint,
  claimed_by       text,
  lease_expires_at timestamptz
);
CREATE INDEX sync_requests_due ON sync_requests (not_before);

-- Who read or changed what. No health data in detail: ids and field names only.
CREATE TABLE audit_log (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           timestamptz NOT NULL,
  therapist_id uuid,
  actor        text NOT NULL,
  action       text NOT NULL,
  subject_type text NOT NULL,
  subject_id   text,
  detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_therapist ON audit_log (therapist_id, at);
CREATE INDEX audit_log_subject ON audit_log (subject_type, subject_id);

-- One row per key that may still have sealed values: start-up refuses a keyring that lacks one.
CREATE TABLE key_canaries (
  key_id     text PRIMARY KEY,
  canary     text NOT NULL,
  created_at timestamptz NOT NULL
);
`;
