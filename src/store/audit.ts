// The audit log: who read or changed what. Details hold ids and field names, never health data.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface AuditEntry {
  at: Date;
  /** The therapist whose data it is (null for practice-wide or operator work). */
  therapistId: string | null;
  /** "therapist:<id>", "operator", "system", "client-link:<fact>". */
  actor: string;
  action: 'read' | 'create' | 'update' | 'delete' | 'export' | 'rotate-key' | 'connect' | 'disconnect';
  subjectType: string;
  subjectId?: string | null;
  detail?: Record<string, unknown>;
}

export async function audit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at: entry.at,
      therapist_id: entry.therapistId,
      actor: entry.actor,
      action: entry.action,
      subject_type: entry.subjectType,
      subject_id: entry.subjectId ?? null,
      detail: JSON.stringify(entry.detail ?? {}),
    })
    .execute();
}
