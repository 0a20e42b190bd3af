// Creates auth_service's database users. Mounted into the mongo container's
// /docker-entrypoint-initdb.d/, so it runs once, on the first start with an
// empty data volume, as the root user (MONGO_INITDB_ROOT_USERNAME).
//
// It only creates users (CONTRACT §2.12): the roles, the API key and the
// admin user are seeded by auth_service itself at start-up, idempotently, the
// same way on every store. Do not add inserts here.
//
// The users and the password match auth_service/.env.example
// (DB_USER=auth-<env>-db-user, DB_USER_PWD=changeit): local-use values.
const authDatabases = ["auth-prod-db", "auth-dev-db", "auth-test-db"];

for (const name of authDatabases) {
  const database = db.getSiblingDB(name);
  const user = `${name}-user`;
  if (database.getUser(user) === null) {
    database.createUser({
      user: user,
      pwd: "changeit",
      roles: [{ role: "readWrite", db: name }],
    });
    print(`created user ${user} on ${name}`);
  } else {
    print(`user ${user} on ${name} already exists`);
  }
}
