-- Notes are no longer append-only: their author edits or deletes them, an admin hides any.
ALTER TABLE notes ADD COLUMN edited_at TIMESTAMP;
-- The admin who hid the note; NULL while it is shown.
ALTER TABLE notes ADD COLUMN hidden_by TEXT;
