// What the follow-ups keep: each follow-up the engine opened for a client (one task per fact, the later
// facts it took in, when and why it closed), and which session a booking link offers to move.
// Never edit this file once it has landed: add a new migration instead (migrate.ts checks).

export const name = '0005_followups';

export const sql = /* sql */ `
-- A follow-up for the therapist about one client: opened by a fact (a cancellation, a no-show, a
-- client not rebooked, a gap beyond their cadence, a series ended), its task keyed by 'key'. While it
-- is open, later facts about the client are added to it (happenings) rather than opening another.
-- Closed by us when the client books again; the therapist completing or deleting its task is in tasks.
CREATE TABLE follow_ups (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id  uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  client_id     uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  key           text NOT NULL UNIQUE,
  kind          text NOT NULL,
  -- The connection whose task list holds its task (its updates and close go there too).
  connection_id uuid REFERENCES connections (id) ON DELETE SET NULL,
  status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  -- What happened, in order: kinds, times and counts (never names or event text).
  happenings    jsonb NOT NULL DEFAULT '[]'::jsonb,
  closed_reason text,
  opened_at     timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  closed_at     timestamptz
);
CREATE INDEX follow_ups_open ON follow_ups (therapist_id, client_id) WHERE status = 'open';

-- Every fact that was taken up (opened a follow-up or was added to one): a fact is never taken up twice,
-- so a task the therapist completed is not opened again for it.
CREATE TABLE follow_up_facts (
  fact_key      text PRIMARY KEY,
  therapist_id  uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  follow_up_id  uuid NOT NULL REFERENCES follow_ups (id) ON DELETE CASCADE,
  recorded_at   timestamptz NOT NULL
);

-- A link sent about one session (a reminder's "choose another time", the invite's line) moves that
-- session rather than booking a second one.
ALTER TABLE booking_links ADD COLUMN appointment_id uuid REFERENCES appointments (id) ON DELETE SET NULL;
ALTER TABLE bookings ADD COLUMN moves_appointment_id uuid REFERENCES appointments (id) ON DELETE SET NULL;
`;
