// Creates the database user of each service (auth_service, blog_service).
// Mounted into the mongo container's /docker-entrypoint-initdb.d/, so mongosh
// runs it once, on the first start with an empty data volume, as the root
// user (MONGO_INITDB_ROOT_USERNAME).
//
// It only creates users: auth_service seeds its roles, API key and admin
// itself, and blog_service creates its collections and indexes, idempotently,
// the same way on every store. Do not add inserts here.
//
// Database, user and password come from the mongo container's environment:
// compose passes AUTH_DB_NAME, AUTH_DB_USER, AUTH_DB_USER_PWD (and the BLOG_
// ones) from the root .env, and the same values to each service as DB_NAME,
// DB_USER and DB_USER_PWD, so no password is written in this file. A missing
// variable stops the first start instead of creating a user without one.
const env = process.env;

for (const prefix of ["AUTH_", "BLOG_"]) {
  for (const key of ["DB_NAME", "DB_USER", "DB_USER_PWD"]) {
    if (!env[prefix + key]) {
      throw new Error(`${prefix}${key} is not set in the mongo container's environment`);
    }
  }
  const name = env[prefix + "DB_NAME"];
  const user = env[prefix + "DB_USER"];
  const database = db.getSiblingDB(name);
  if (database.getUser(user) === null) {
    database.createUser({
      user: user,
      pwd: env[prefix + "DB_USER_PWD"],
      roles: [{ role: "readWrite", db: name }],
    });
    print(`created user ${user} on ${name}`);
  } else {
    print(`user ${user} on ${name} already exists`);
  }
}
