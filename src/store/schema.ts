// The tables as Kysely sees them (kept in step with migrations/ by the schema test).
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb: written as a JSON string (both drivers), read back parsed. */
type Json<T> = ColumnType<T, string, string>;
type JsonDefault<T> = ColumnType<T, string | undefined, string>;

export type Provider = 'google' | 'microsoft';
export type ConnectionStatus = 'ok' | 'needs_reauth' | 'revoked';
export type CalendarRole = 'practice' | 'mixed' | 'busy_only' | 'ignored';
export type ActionStatus = 'pending' | 'running' | 'done' | 'failed' | 'unknown' | 'parked' | 'cancelled';

export interface PracticesTable {
  id: Generated<string>;
  name: string;
  settings: JsonDefault<unknown>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TherapistsTable {
  id: Generated<string>;
  practice_id: string;
  role: ColumnType<'owner' | 'admin' | 'therapist', 'owner' | 'admin' | 'therapist' | undefined>;
  display_name: string | null;
  email: string | null;
  time_zone: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TherapistIdentitiesTable {
  provider: Provider;
  tenant_id: ColumnType<string, string | undefined, string>;
  subject: string;
  therapist_id: string;
  created_at: Timestamp;
}

export interface ConnectionsTable {
  id: Generated<string>;
  therapist_id: string;
  provider: Provider;
  account_subject: string;
  account_email: string | null;
  scopes: ColumnType<string[], string[] | undefined, string[]>;
  credentials: string | null;
  status: ColumnType<ConnectionStatus, ConnectionStatus | undefined, ConnectionStatus>;
  status_reason: string | null;
  status_changed_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CalendarsTable {
  id: Generated<string>;
  connection_id: string;
  therapist_id: string;
  provider_calendar_id: string;
  name: string | null;
  time_zone: string | null;
  role: ColumnType<CalendarRole, CalendarRole | undefined, CalendarRole>;
  cursor: string | null;
  window_start: NullableTimestamp;
  window_end: NullableTimestamp;
  last_sync_at: NullableTimestamp;
  last_full_sync_at: NullableTimestamp;
  last_error: string | null;
  last_error_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PushChannelsTable {
  id: Generated<string>;
  calendar_id: string;
  provider: Provider;
  channel_id: string;
  resource_id: string | null;
  secret_hash: string;
  expires_at: Timestamp;
  status: ColumnType<'active' | 'replaced' | 'stopped', 'active' | 'replaced' | 'stopped' | undefined>;
  created_at: Timestamp;
  stopped_at: NullableTimestamp;
}

export interface EventSnapshotsTable {
  calendar_id: string;
  event_id: string;
  ical_uid: string | null;
  series_id: string | null;
  original_start: string | null;
  status: 'confirmed' | 'tentative' | 'cancelled' | 'deleted';
  version: string | null;
  platform_updated_at: NullableTimestamp;
  start_at: NullableTimestamp;
  end_at: NullableTimestamp;
  busy: ColumnType<boolean, boolean | undefined, boolean>;
  payload: string | null;
  synced_at: Timestamp;
}

export interface ClientsTable {
  id: Generated<string>;
  therapist_id: string;
  display_name: string | null;
  time_zone: string | null;
  status: ColumnType<'active' | 'archived', 'active' | 'archived' | undefined>;
  ledger_key: ColumnType<string | null, string | null | undefined, string | null>;
  ledger_key_hash: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ClientIdentitiesTable {
  id: Generated<string>;
  client_id: string;
  therapist_id: string;
  kind: 'email' | 'title';
  value: string;
  value_hash: string;
  linked_by: ColumnType<'auto' | 'therapist', 'auto' | 'therapist' | undefined>;
  created_at: Timestamp;
}

export interface AppointmentsTable {
  id: Generated<string>;
  therapist_id: string;
  calendar_id: string;
  event_id: string;
  ical_uid: string | null;
  series_id: string | null;
  original_start: string | null;
  client_id: string | null;
  appointment_type: string | null;
  state: string;
  start_at: Timestamp;
  end_at: Timestamp;
  time_zone: string | null;
  session_number: number | null;
  ledger_key: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AppointmentTransitionsTable {
  id: Generated<number>;
  appointment_id: string;
  therapist_id: string;
  key: string;
  kind: string;
  occurred_at: Timestamp;
  recorded_at: Timestamp;
  detail: JsonDefault<Record<string, unknown>>;
}

export interface ActionsTable {
  id: Generated<string>;
  therapist_id: string;
  connection_id: string | null;
  kind: string;
  idempotency_key: string;
  status: ColumnType<ActionStatus, ActionStatus | undefined, ActionStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Timestamp;
  lease_expires_at: NullableTimestamp;
  claimed_by: string | null;
  payload: JsonDefault<Record<string, unknown>>;
  external_ref: string | null;
  outcome: ColumnType<unknown, string | null | undefined, string | null>;
  last_error: string | null;
  fact_key: ColumnType<string | null, string | null | undefined, string | null>;
  started_at: NullableTimestamp;
  /** Sealed JSON (actions.secret): the personal part of the payload. */
  secret: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: NullableTimestamp;
}

export interface TaskListsTable {
  id: Generated<string>;
  therapist_id: string;
  connection_id: string;
  provider_list_id: string;
  cursor: ColumnType<string | null, string | null | undefined, string | null>;
  checked_through: NullableTimestamp;
  next_check_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type TaskStatus = 'open' | 'completed' | 'deleted';

export interface TasksTable {
  id: Generated<string>;
  therapist_id: string;
  list_id: string;
  key: string;
  marker: string;
  provider_task_id: string;
  status: TaskStatus;
  closed_by: 'therapist' | 'sessionkeeper' | null;
  closed_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface BookingLinksTable {
  id: Generated<string>;
  therapist_id: string;
  client_id: string;
  fact_key: ColumnType<string, string | undefined, string>;
  appointment_type: string | null;
  /** The session this link offers to move (a reminder's or the invite's link), if any. */
  appointment_id: ColumnType<string | null, string | null | undefined, string | null>;
  expires_at: Timestamp;
  created_at: Timestamp;
}

export type BookingMode = 'in_person' | 'telehealth';

export interface BookingsTable {
  id: Generated<string>;
  therapist_id: string;
  client_id: string;
  link_id: string;
  calendar_id: string;
  appointment_type: string;
  mode: BookingMode;
  start_at: Timestamp;
  end_at: Timestamp;
  time_zone: string;
  location: ColumnType<string | null, string | null | undefined, string | null>;
  client_zone: string | null;
  action_id: string;
  fact_key: string;
  /** A move of this session (from a link about it) rather than a new one. */
  moves_appointment_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
}

export type FollowUpKind = 'cancelled' | 'declined' | 'no_show' | 'not_rebooked' | 'gap_beyond_cadence' | 'series_ended';

/** One thing that happened, as a follow-up keeps it: kinds, times and counts only. */
export interface Happening {
  kind: FollowUpKind;
  /** When it happened (a cancellation seen, a session missed, a signal became true). */
  at: string;
  /** The session it is about, if one. */
  sessionStart?: string;
  late?: boolean;
  afterSession?: number;
  days?: number;
  usualDays?: number;
}

export interface FollowUpsTable {
  id: Generated<string>;
  therapist_id: string;
  client_id: string;
  key: string;
  kind: FollowUpKind;
  connection_id: string | null;
  status: ColumnType<'open' | 'closed', 'open' | 'closed' | undefined, 'open' | 'closed'>;
  happenings: ColumnType<Happening[], string, string>;
  closed_reason: string | null;
  opened_at: Timestamp;
  updated_at: Timestamp;
  closed_at: NullableTimestamp;
}

export interface FollowUpFactsTable {
  fact_key: string;
  therapist_id: string;
  follow_up_id: string;
  recorded_at: Timestamp;
}

export interface LedgersTable {
  therapist_id: string;
  state: string;
  rounds: ColumnType<number, number | undefined, number>;
  next_presume_at: NullableTimestamp;
  updated_at: Timestamp;
}

export interface ClientSignalsTable {
  id: Generated<number>;
  therapist_id: string;
  client_id: string;
  key: string;
  kind: string;
  since: Timestamp;
  detail: JsonDefault<Record<string, unknown>>;
  recorded_at: Timestamp;
  cleared_at: NullableTimestamp;
}

export interface SyncRequestsTable {
  calendar_id: string;
  seq: ColumnType<number, number | undefined, number>;
  full_resync: ColumnType<boolean, boolean | undefined, boolean>;
  reason: string;
  requested_at: Timestamp;
  not_before: Timestamp;
  attempts: ColumnType<number, number | undefined, number>;
  claimed_seq: number | null;
  claimed_by: string | null;
  lease_expires_at: NullableTimestamp;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: Timestamp;
  therapist_id: string | null;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string | null;
  detail: JsonDefault<Record<string, unknown>>;
}

export interface KeyCanariesTable {
  key_id: string;
  canary: string;
  created_at: Timestamp;
}

export interface SchemaMigrationsTable {
  name: string;
  checksum: string;
  applied_at: Timestamp;
}

export interface Database {
  practices: PracticesTable;
  therapists: TherapistsTable;
  therapist_identities: TherapistIdentitiesTable;
  connections: ConnectionsTable;
  calendars: CalendarsTable;
  push_channels: PushChannelsTable;
  event_snapshots: EventSnapshotsTable;
  clients: ClientsTable;
  client_identities: ClientIdentitiesTable;
  appointments: AppointmentsTable;
  appointment_transitions: AppointmentTransitionsTable;
  actions: ActionsTable;
  sync_requests: SyncRequestsTable;
  audit_log: AuditLogTable;
  key_canaries: KeyCanariesTable;
  ledgers: LedgersTable;
  client_signals: ClientSignalsTable;
  task_lists: TaskListsTable;
  tasks: TasksTable;
  booking_links: BookingLinksTable;
  bookings: BookingsTable;
  follow_ups: FollowUpsTable;
  follow_up_facts: FollowUpFactsTable;
  schema_migrations: SchemaMigrationsTable;
}

export type Action = Selectable<ActionsTable>;
export type NewAction = Insertable<ActionsTable>;
export type Connection = Selectable<ConnectionsTable>;
export type Calendar = Selectable<CalendarsTable>;
export type CalendarUpdate = Updateable<CalendarsTable>;
export type SyncRequest = Selectable<SyncRequestsTable>;
