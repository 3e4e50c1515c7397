// What the platform actions keep: an action's personal details sealed beside its plain payload, the
// therapist's follow-up list per connection (with the watermark of its sparse check), and each task
// we opened, so a task the therapist completed or deleted is never opened again for the same fact.
// Never edit this file once it has landed: add a new migration instead (migrate.ts checks).

export const name = '0003_actions';

export const sql = /* sql */ `
-- Names, emails and text an action needs (a message, a task's title), sealed (secrets.ts).
ALTER TABLE actions ADD COLUMN secret text;

-- The practice's follow-up list in one connected account (Google Tasks list, To Do list).
CREATE TABLE task_lists (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  connection_id    uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  provider_list_id text NOT NULL,
  -- The sparse check: listed again when next_check_at has come, and only while the list holds open
  -- tasks of ours. cursor: where the platform's changes were read up to (the connector's own: an
  -- updatedMin on Google, a delta link on Graph); checked_through: when we last looked.
  cursor           text,
  checked_through  timestamptz,
  next_check_at    timestamptz NOT NULL,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (connection_id)
);

-- A task we opened. key: the fact it is about (one task per fact); marker: what the platform's copy
-- carries (connectors/port.ts taskMarker). closed_by: 'therapist' (completed or deleted there: never
-- reopened) or 'sessionkeeper' (closed by us, e.g. the client booked again).
CREATE TABLE tasks (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  list_id          uuid NOT NULL REFERENCES task_lists (id) ON DELETE CASCADE,
  key              text NOT NULL,
  marker           text NOT NULL,
  provider_task_id text NOT NULL,
  status           text NOT NULL CHECK (status IN ('open', 'completed', 'deleted')),
  closed_by        text CHECK (closed_by IN ('therapist', 'sessionkeeper')),
  closed_at        timestamptz,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (therapist_id, key)
);
CREATE INDEX tasks_open ON tasks (list_id) WHERE status = 'open';
`;
