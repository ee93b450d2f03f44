// What counts as a secret, and how its value is kept out of logs, results and errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isSecretName, maskSecrets, redactSecretFields, REDACTED } from "../libs/secrets/index.ts";

test("names whose last word is a secret's are secrets, whatever their case or separators", () => {
  for (const name of [
    "password", "DB_PASSWORD", "dbPassword", "PGPASSWORD", "MYSQL_PASSWD", "GITHUB_TOKEN", "accessToken", "refresh_token", "secret", "clientSecret",
    "API_KEY", "apiKey", "APIKEY", "x-api-key", "AWS_SECRET_ACCESS_KEY", "privateKey", "SSH_KEY", "authorization", "GOOGLE_CREDENTIALS", "cookie",
  ]) {
    assert.equal(isSecretName(name), true, name);
  }
});

test("names that only mention a secret's word, or end in a plain key, are not secrets", () => {
  for (const name of ["max_tokens", "token_count", "SORT_KEY", "partitionKey", "password_hash", "SECRET_NAME", "PRIVATE_KEY_PATH", "PWD", "PATH", "key", "monkey", ""]) {
    assert.equal(isSecretName(name), false, name);
  }
});

test("given secret values, when text holds them, then each is replaced whole, the longest first", () => {
  assert.equal(maskSecrets("user=ann pass=hunter2 again hunter2", ["hunter2"]), `user=ann pass=${REDACTED} again ${REDACTED}`);
  assert.equal(maskSecrets("key abc-long", ["abc", "abc-long"]), `key ${REDACTED}`, "a secret holding another is hidden whole");
  assert.equal(maskSecrets("nothing here", ["", "absent"]), "nothing here", "an empty secret hides nothing");
  assert.equal(maskSecrets("a $(x) b", ["$(x)"]), `a ${REDACTED} b`, "values are matched literally, not as patterns");
});

test("given a log object, when fields are named like secrets, then their values are redacted and the object is copied, not changed", () => {
  const input = { user: "ann", DB_PASSWORD: "pw", nested: { apiKey: "k", tokens: 12 }, list: [{ token: "t" }, 1], env: { HOME: "/h" } };
  const out = redactSecretFields(input);
  assert.deepEqual(out, { user: "ann", DB_PASSWORD: REDACTED, nested: { apiKey: REDACTED, tokens: 12 }, list: [{ token: REDACTED }, 1], env: { HOME: "/h" } });
  assert.equal(input.DB_PASSWORD, "pw", "the caller's object is left as it was");
  const clean = { a: 1, b: { c: [1, 2] } };
  assert.equal(redactSecretFields(clean), clean, "nothing to redact: the same object back");
  const err = Object.assign(new Error("x"), { password: "p" });
  assert.equal(redactSecretFields(err), err, "only plain objects are walked");
  assert.deepEqual(redactSecretFields({ token: null, secret: undefined }), { token: null, secret: undefined }, "an absent value stays absent");
});
