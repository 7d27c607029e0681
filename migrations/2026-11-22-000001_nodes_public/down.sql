DROP VIEW nodes_public;
DROP FUNCTION mask_passwords(jsonb);
