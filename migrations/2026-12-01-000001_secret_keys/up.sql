-- nodes_public masks every key that names a secret, not only keys containing "password" (issue 12): the
-- same rule molteniron applies everywhere else (src/secret.rs, whose documentation lists the families
-- and the exceptions and says why). The integration test
-- secrets::the_view_masks_exactly_the_keys_molteniron_masks holds the two rules to each other.
--
-- The function keeps its name, signature and owner, and CREATE OR REPLACE keeps its identity: the view
-- nodes_public calls it unchanged, and the privileges `molteniron roles` granted on both stay as they
-- were, so neither the view nor the roles need to be set up again.

-- A key is judged by its ASCII letters in lower case, everything else left out (snmp_auth_key,
-- snmpAuthKey and SNMP-AUTH-KEY-2 all read snmpauthkey). translate() rather than lower(): only ASCII
-- letters change case, as in molteniron (lower() turns the Kelvin sign into a "k" in some locales). The
-- rest is LIKE, which no session has to compile; the one regular expression is a plain set of letters.
CREATE OR REPLACE FUNCTION mask_passwords(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    secret text[];
BEGIN
    FOR secret IN
        WITH RECURSIVE walk (path, value, masked) AS (
            SELECT ARRAY[]::text[], doc, false
            UNION ALL
            SELECT w.path || child.key, child.value,
                   -- src/secret.rs: SECRET_WORDS anywhere, SECRET_ALONE, SECRET_ENDINGS at the end
                   -- unless NOT_SECRET_ENDINGS.
                   letters.l LIKE ANY (ARRAY['%password%', '%passwd%', '%passphrase%', '%secret%',
                                             '%token%', '%credential%', '%community%', '%privatekey%',
                                             '%privkey%'])
                   OR letters.l = 'kg'
                   OR (letters.l LIKE ANY (ARRAY['%key', '%pass', '%pwd', '%pswd', '%pw', '%auth',
                                                 '%authorization', '%ipmikg', '%bmckg'])
                       AND NOT (letters.l LIKE ANY (ARRAY['%publickey', '%pubkey', '%bypass'])))
            FROM walk AS w
            CROSS JOIN LATERAL (
                SELECT key, value
                FROM jsonb_each(CASE WHEN jsonb_typeof(w.value) = 'object' THEN w.value END)
                UNION ALL
                -- An array's indices are no keys: their letters are empty, which is never a secret.
                SELECT (n - 1)::text, value
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.value) = 'array' THEN w.value END)
                     WITH ORDINALITY AS element (value, n)
            ) AS child
            CROSS JOIN LATERAL (
                SELECT regexp_replace(
                           translate(child.key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                           '[^abcdefghijklmnopqrstuvwxyz]+', '', 'g') AS l
            ) AS letters
            -- A masked value is replaced whole: nothing inside it is walked.
            WHERE NOT w.masked
        )
        SELECT path FROM walk WHERE masked
    LOOP
        doc := jsonb_set(doc, secret, '"********"');
    END LOOP;
    RETURN doc;
END
$$;

COMMENT ON FUNCTION mask_passwords(jsonb) IS
    'molteniron: the JSON with the value of every key that names a secret (any case, any depth) replaced by "********": passwords, passphrases, secrets, tokens, credentials, community strings, private keys, *_key but not public keys, auth, IPMI kg (the rule of molteniron''s src/secret.rs)';
COMMENT ON VIEW nodes_public IS
    'molteniron: nodes with BMC secrets masked, for roles that may not read nodes.driver_info (see molteniron roles)';
COMMENT ON COLUMN nodes_public.driver_info IS
    'nodes.driver_info with the value of every key that names a secret shown as ******** (see mask_passwords)';
COMMENT ON COLUMN nodes_public.properties IS
    'nodes.properties with the value of every key that names a secret shown as ******** (see mask_passwords)';
COMMENT ON COLUMN nodes_public.ironic_fields IS
    'nodes.ironic_fields with the value of every key that names a secret shown as ******** (see mask_passwords)';

-- Until now set-field recorded the new value in the history unless the key contained "password", so the
-- history (which the read-only role reads) may hold secrets: record those changes as set-field records
-- them from now on, "(changed)". A change counts as a secret's exactly when set-field would say so now:
-- the field's key names a secret, or the value holds one. The values are kept nowhere else, so the down
-- migration cannot bring them back, and it should not.
UPDATE events
SET detail = jsonb_set(detail, '{value}', '"(changed)"')
WHERE action = 'set_field'
  AND detail ? 'field'
  AND detail ? 'value'
  AND detail->'value' <> '"(changed)"'
  AND mask_passwords(jsonb_build_object(regexp_replace(detail->>'field', '^.*\.', ''), detail->'value'))
      <> jsonb_build_object(regexp_replace(detail->>'field', '^.*\.', ''), detail->'value');
