DROP TABLE events;
DROP TABLE nodes;
