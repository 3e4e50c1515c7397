// What rebooking from a link keeps: each link we gave a client (the fact that prompted it, its expiry)
// and each booking made from one, which is also our hold on that time until its event exists.
// Never edit this file once it has landed: add a new migration instead (migrate.ts checks).

export const name = '0004_booking';

export const sql = /* sql */ `
-- A booking link. The URL carries only this row's id, the expiry and a MAC over them and what the row
-- binds (practice, client, fact): no name, no email, nothing about the therapy.
CREATE TABLE booking_links (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  client_id        uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  -- The fact that prompted it (a client signal or transition key), or '' for one asked for by hand.
  fact_key         text NOT NULL DEFAULT '',
  appointment_type text,
  expires_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL
);
CREATE INDEX booking_links_client ON booking_links (therapist_id, client_id);

-- A booking from a link: the session asked for, and the event.create action that makes it. While that
-- action is neither failed nor cancelled the booking holds its time (suggestions and other bookings
-- treat it as busy), and its link is used.
CREATE TABLE bookings (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  therapist_id     uuid NOT NULL REFERENCES therapists (id) ON DELETE CASCADE,
  client_id        uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  link_id          uuid NOT NULL REFERENCES booking_links (id) ON DELETE CASCADE,
  calendar_id      uuid NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
  appointment_type text NOT NULL,
  mode             text NOT NULL CHECK (mode IN ('in_person', 'telehealth')),
  start_at         timestamptz NOT NULL,
  end_at           timestamptz NOT NULL,
  time_zone        text NOT NULL,
  -- In person: the location's address, as the invite has it (the practice's, not the client's).
  location         text,
  -- The client's zone as their browser said, for the confirmation.
  client_zone      text,
  action_id        uuid NOT NULL REFERENCES actions (id),
  fact_key         text NOT NULL,
  created_at       timestamptz NOT NULL
);
CREATE INDEX bookings_therapist_time ON bookings (therapist_id, start_at);
CREATE INDEX bookings_link ON bookings (link_id);
`;
