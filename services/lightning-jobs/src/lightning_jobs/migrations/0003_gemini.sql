-- Seed 002's Gemini conversations and their messages (http/gemini.py), plain owned tables as the
-- seed keeps them: no money moves and nothing has a state to replay, so no event stream. Integer
-- ids because the seed's clients address them so. A conversation deleted takes its messages along.
CREATE TABLE gemini_conversations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gemini_messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES gemini_conversations (id) ON DELETE CASCADE,
    role             text NOT NULL CHECK (role IN ('user', 'assistant')),
    content          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX gemini_messages_by_conversation ON gemini_messages (conversation_id, id);
