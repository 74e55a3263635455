"""PostgreSQL triggers that make allocation slots and assignments append-only in the database too.

The ORM already refuses updates and deletes (``AppendOnlyModel``); these triggers also stop a raw
``UPDATE``/``DELETE`` from any client. The one exception is the throwaway scheme of
``simulate_assignments`` (``is_simulation``), whose rows are purged after the run. ``TRUNCATE``
(used by test-database flushes) does not fire row triggers. Other databases rely on the ORM guard.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION allocationslot_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM assignment_allocationscheme s WHERE s.id = OLD.scheme_id AND s.is_simulation
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on allocation slots refused: the sequence is append-only', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION assignment_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM assignment_allocationslot sl
        JOIN assignment_allocationscheme s ON s.id = sl.scheme_id
        WHERE sl.id = OLD.slot_id AND s.is_simulation
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on assignments refused: assignments are append-only', TG_OP;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER assignment_append_only BEFORE UPDATE OR DELETE ON assignment_assignment
    FOR EACH ROW EXECUTE FUNCTION assignment_refuse_change();
CREATE TRIGGER allocationslot_append_only BEFORE UPDATE OR DELETE ON assignment_allocationslot
    FOR EACH ROW EXECUTE FUNCTION allocationslot_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS assignment_append_only ON assignment_assignment;
DROP TRIGGER IF EXISTS allocationslot_append_only ON assignment_allocationslot;
DROP FUNCTION IF EXISTS assignment_refuse_change();
DROP FUNCTION IF EXISTS allocationslot_refuse_change();
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("assignment", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
