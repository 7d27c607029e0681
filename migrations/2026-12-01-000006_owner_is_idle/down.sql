DROP FUNCTION owner_is_idle(text);
