package policies

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestSecretLikeEnvName(t *testing.T) {
	var patterns [][]string
	for _, n := range DefaultConfig().Policies.SecretEnv.SecretNames {
		patterns = append(patterns, envNameWords(n))
	}
	for name, want := range map[string]bool{
		// Loom's secrets (LOOM.md).
		"LOOM_PASSWORD": true, "JWT_SECRET": true, "DATABASE_DSN": true, "DATABASE_URL": true,
		"LOOM_DATABASE_URL": true, "POSTGRES_PASSWORD": true, "POSTGRES_PWD": true, "SMTP_PASSWORD": true,
		"OPENAI_API_KEY": true, "ANTHROPIC_API_KEY": true, "NVIDIA_API_KEY": true, "GITHUB_TOKEN": true,
		// Separators and case.
		"api-key": true, "Api.Key": true, "my__secret": true, "APIKEY": true, "SSH_PRIVATE_KEY": true,
		"SECRET": true, "_TOKEN_": true,
		// Whole words only.
		"TOKENIZER_MODEL": false, "PASSWORDLESS_LOGIN": false, "SECRETARY": false, "API": false, "KEY": false,
		"API_KEYS": false, "PRIVATE": false, "DATABASE": false, "URL": false, "DATABASE_HOST": false,
		"TEMPORAL_HOST": false, "PATH": false, "": false,
		// A final FILE or PATH word points at a mounted secret.
		"POSTGRES_PASSWORD_FILE": false, "SSH_PRIVATE_KEY_PATH": false, "api_key.file": false,
		"PASSWORD_FILE_CONTENT": true, "FILE_PASSWORD": true, "TOKEN_PATH_SECRET": true,
		// So do a final DIR or DIRECTORY word (the reported SECRET_DIR), in any convention.
		"SECRET_DIR": false, "SECRETS_DIR": false, "TOKEN_DIRECTORY": false, "secretDir": false,
		"apiKeyFile": false, "PasswordPath": false, "DIR_SECRET": true, "SECRET_DIRS": true,
		// Case conventions: camelCase, PascalCase, acronyms, digits, kebab and dotted.
		"dbPassword": true, "DbPassword": true, "DBPassword": true, "dbPASSWORD": true, "apiKey": true,
		"APIKey": true, "ApiKey": true, "oauth2Token": true, "OAuth2ClientSecret": true, "clientSecret": true,
		"db-password": true, "db.password": true, "Db.Password": true, "tokenizerModel": false,
		"passwordless": false, "PASSWORDless": false, "myApiKeys": false, "privateKey": true, "PRIVATEKey": true,
		"SSHPrivateKey": true, "MD5SUM_TOKEN": true, "X2TOKEN": false, "dsn": true, "DSNHost": true,
	} {
		if got := secretLikeEnvName(name, patterns); got != want {
			t.Errorf("secretLikeEnvName(%q) = %v, want %v", name, got, want)
		}
	}
	// A configured word ending in FILE matches the final FILE word itself.
	if !secretLikeEnvName("SSH_KEY_FILE", [][]string{{"KEY", "FILE"}}) {
		t.Error("KEY_FILE does not match SSH_KEY_FILE")
	}
}

func TestEnvNameWords(t *testing.T) {
	for name, want := range map[string][]string{
		"POSTGRES_PASSWORD":          {"POSTGRES", "PASSWORD"},
		"dbPassword":                 {"DB", "PASSWORD"},
		"DBPassword":                 {"DB", "PASSWORD"},
		"DbPassword":                 {"DB", "PASSWORD"},
		"OAuth2ClientSecret":         {"O", "AUTH2", "CLIENT", "SECRET"},
		"oauth2Token":                {"OAUTH2", "TOKEN"},
		"MD5SUM":                     {"MD5SUM"},
		"spring.datasource.password": {"SPRING", "DATASOURCE", "PASSWORD"},
		"ASPNETCORE_Kestrel__Certificates__Default__Password": {"ASPNETCORE", "KESTREL", "CERTIFICATES", "DEFAULT", "PASSWORD"},
		"--x--": {"X"},
		"":      nil,
	} {
		if got := envNameWords(name); !slices.Equal(got, want) {
			t.Errorf("envNameWords(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestSecretLikeEnvNameRealWorld gives the verdict of the default secret names on variables
// that widely used images and charts document (their names are facts; the verdicts are
// this project's). A few rows are deliberate non-matches the word rule cannot know: they
// are marked, so that a change of verdict is a decision.
func TestSecretLikeEnvNameRealWorld(t *testing.T) {
	var patterns [][]string
	for _, n := range DefaultConfig().Policies.SecretEnv.SecretNames {
		patterns = append(patterns, envNameWords(n))
	}
	for _, tc := range []struct {
		name   string
		secret bool
		from   string
	}{
		{"POSTGRES_PASSWORD", true, "postgres image"},
		{"POSTGRES_PASSWORD_FILE", false, "postgres image"},
		{"POSTGRES_USER", false, "postgres image"},
		{"PGDATA", false, "postgres image"},
		{"PGPASSWORD", false, "libpq; one word: add PGPASSWORD to secretNames to cover it"},
		{"MYSQL_ROOT_PASSWORD", true, "mysql image"},
		{"MYSQL_ROOT_PASSWORD_FILE", false, "mysql image"},
		{"MYSQL_DATABASE", false, "mysql image"},
		{"MARIADB_ROOT_PASSWORD", true, "mariadb image"},
		{"MONGO_INITDB_ROOT_PASSWORD", true, "mongo image"},
		{"MONGO_INITDB_ROOT_USERNAME", false, "mongo image"},
		{"REDIS_PASSWORD", true, "bitnami redis chart"},
		{"RABBITMQ_DEFAULT_USER", false, "rabbitmq image"},
		{"GF_SECURITY_ADMIN_PASSWORD", true, "grafana image"},
		{"GF_SECURITY_ADMIN_PASSWORD__FILE", false, "grafana image"},
		{"GF_PATHS_DATA", false, "grafana image"},
		{"MINIO_ROOT_USER", false, "minio image"},
		{"MINIO_ROOT_PASSWORD", true, "minio image"},
		{"MINIO_SECRET_KEY", true, "minio image"},
		{"AWS_ACCESS_KEY_ID", false, "AWS SDKs"},
		{"AWS_SECRET_ACCESS_KEY", true, "AWS SDKs"},
		{"AWS_SESSION_TOKEN", true, "AWS SDKs"},
		{"AWS_WEB_IDENTITY_TOKEN_FILE", false, "EKS pod identity webhook"},
		{"AWS_REGION", false, "AWS SDKs"},
		{"GOOGLE_APPLICATION_CREDENTIALS", true, "Google client libraries; holds a path, but no location word says so"},
		{"VAULT_TOKEN", true, "vault image"},
		{"VAULT_ADDR", false, "vault image"},
		{"VAULT_CACERT", false, "vault image"},
		{"KUBECONFIG", false, "kubectl"},
		{"SSL_CERT_DIR", false, "OpenSSL"},
		{"SSL_CERT_FILE", false, "OpenSSL"},
		{"NODE_EXTRA_CA_CERTS", false, "Node.js"},
		{"JAVA_OPTS", false, "JVM images"},
		{"SPRING_DATASOURCE_PASSWORD", true, "Spring Boot"},
		{"SPRING_DATASOURCE_URL", false, "Spring Boot"},
		{"spring.datasource.password", true, "Spring Boot relaxed binding"},
		{"spring.datasource.username", false, "Spring Boot relaxed binding"},
		{"DATABASE_URL", true, "Rails, Heroku"},
		{"SECRET_KEY_BASE", true, "Rails"},
		{"RAILS_LOG_TO_STDOUT", false, "Rails images"},
		{"DJANGO_SECRET_KEY", true, "Django apps"},
		{"NEXTAUTH_SECRET", true, "NextAuth.js"},
		{"NEXTAUTH_URL", false, "NextAuth.js"},
		{"SENTRY_DSN", true, "Sentry SDKs"},
		{"GITLAB_ROOT_PASSWORD", true, "gitlab image"},
		{"KEYCLOAK_ADMIN_PASSWORD", true, "keycloak image"},
		{"KEYCLOAK_ADMIN", false, "keycloak image"},
		{"KC_DB_PASSWORD", true, "keycloak image"},
		{"KC_DB_URL", false, "keycloak image"},
		{"WORDPRESS_DB_PASSWORD", true, "wordpress image"},
		{"WORDPRESS_DB_PASSWORD_FILE", false, "wordpress image"},
		{"WORDPRESS_DB_HOST", false, "wordpress image"},
		{"ELASTIC_PASSWORD", true, "elasticsearch image"},
		{"discovery.type", false, "elasticsearch image"},
		{"xpack.security.enabled", false, "elasticsearch image"},
		{"CONSUL_HTTP_TOKEN", true, "consul"},
		{"NPM_TOKEN", true, "npm CI images"},
		{"HF_TOKEN", true, "Hugging Face images"},
		{"TOKENIZERS_PARALLELISM", false, "Hugging Face tokenizers"},
		{"HF_HOME", false, "Hugging Face images"},
		{"OPENAI_API_KEY", true, "OpenAI SDKs"},
		{"CLOUDFLARE_API_TOKEN", true, "cloudflare tooling"},
		{"DOCKER_PASSWORD", true, "docker login in CI images"},
		{"DOCKER_CONFIG", false, "docker CLI"},
		{"ASPNETCORE_Kestrel__Certificates__Default__Password", true, "ASP.NET Core"},
		{"ASPNETCORE_Kestrel__Certificates__Default__Path", false, "ASP.NET Core"},
		{"ASPNETCORE_ENVIRONMENT", false, "ASP.NET Core"},
		{"SECRETS_DIR", false, "the reported case"},
		{"SECRET_DIR", false, "the reported case"},
		{"dbPassword", true, "the reported case"},
	} {
		if got := secretLikeEnvName(tc.name, patterns); got != tc.secret {
			t.Errorf("%s (%s): secret-like = %v, want %v", tc.name, tc.from, got, tc.secret)
		}
	}
}

func TestSecretEnv(t *testing.T) {
	c0 := field.NewPath("spec", "template", "spec", "containers").Index(0)
	env := func(i int) *field.Path { return c0.Child("env").Index(i) }
	withEnv := func(vars ...corev1.EnvVar) func(t testing.TB) runtime.Object {
		return func(t testing.TB) runtime.Object {
			return catalogDeployment(t, func(d *appsv1.Deployment) {
				c := &d.Spec.Template.Spec.Containers[0]
				c.Env = append(c.Env, vars...)
			})
		}
	}
	from := func(name string, src corev1.EnvVarSource) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &src}
	}
	secretRef := corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}
	notFromSecret := func(p *field.Path, name, what string) *field.Error {
		return field.Forbidden(p, `container "loom" must take the secret-like variable "`+name+`" from a Secret (valueFrom.secretKeyRef), not `+what)
	}
	weakEnv := func(p *field.Path, name, weak string) *field.Error {
		return field.Forbidden(p, `container "loom" variable "`+name+`" must not be set to the published default "`+weak+`"`)
	}
	// env[0] and env[1] are the base's TEMPORAL_HOST and LOOM_PASSWORD; added variables start at 2.
	catalogRun(t, secretEnv(DefaultConfig().Policies.SecretEnv), []catalogCase{
		{name: "base: LOOM_PASSWORD from a Secret", obj: withEnv()},
		{
			name: "secret-like names from Secrets, other names as literals, an empty secret-like variable",
			obj: withEnv(
				from("OPENAI_API_KEY", secretRef),
				corev1.EnvVar{Name: "TOKENIZER_MODEL", Value: "cl100k"},
				corev1.EnvVar{Name: "POSTGRES_PASSWORD_FILE", Value: "/run/secrets/pg"},
				corev1.EnvVar{Name: "JWT_SECRET"},
			),
		},
		{
			name: "literal secret-like value: never echoed",
			obj:  withEnv(corev1.EnvVar{Name: "JWT_SECRET", Value: "s3cr3t-value"}),
			want: field.ErrorList{notFromSecret(env(2).Child("value"), "JWT_SECRET", "a literal value")},
		},
		{
			name: "every non-Secret source",
			obj: withEnv(
				from("DATABASE_URL", corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "k"}}),
				from("POD_TOKEN", corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}),
				from("CPU_SECRET", corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}),
				from("API_KEY", corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "env", Key: "k"}}),
			),
			want: field.ErrorList{
				notFromSecret(env(2).Child("valueFrom", "configMapKeyRef"), "DATABASE_URL", "a ConfigMap"),
				notFromSecret(env(3).Child("valueFrom", "fieldRef"), "POD_TOKEN", "a pod field"),
				notFromSecret(env(4).Child("valueFrom", "resourceFieldRef"), "CPU_SECRET", "a resource field"),
				notFromSecret(env(5).Child("valueFrom", "fileKeyRef"), "API_KEY", "an env file"),
			},
		},
		{
			name: "GITHUB_TOKEN is refused even from a Secret",
			obj:  withEnv(from("GITHUB_TOKEN", secretRef)),
			want: field.ErrorList{field.Forbidden(env(2), `container "loom" must not set the environment variable "GITHUB_TOKEN", not even from a Secret`)},
		},
		{
			name: "weak defaults in any variable, trimmed and case-insensitive",
			obj: withEnv(
				corev1.EnvVar{Name: "ADMIN_USER_INIT", Value: " ChangeMe "},
				corev1.EnvVar{Name: "POSTGRES_PASSWORD", Value: "loom-default-password"},
			),
			want: field.ErrorList{
				weakEnv(env(2).Child("value"), "ADMIN_USER_INIT", "changeme"),
				notFromSecret(env(3).Child("value"), "POSTGRES_PASSWORD", "a literal value"),
				weakEnv(env(3).Child("value"), "POSTGRES_PASSWORD", "loom-default-password"),
			},
		},
		{
			name: "a value that merely contains a weak default is not one",
			obj:  withEnv(corev1.EnvVar{Name: "GREETING", Value: "please changeme later"}),
		},
		{
			name: "weak defaults in command and args",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					c := &d.Spec.Template.Spec.Containers[0]
					c.Command = []string{"loom", "change-me-in-production"}
					c.Args = []string{"serve", "--admin-password=CHANGEME", "--name=notchangeme", "--x", "changeme=1"}
				})
			},
			want: field.ErrorList{
				field.Forbidden(c0.Child("command").Index(1), `container "loom" must not pass the published default "change-me-in-production" in its command`),
				field.Forbidden(c0.Child("args").Index(1), `container "loom" must not pass the published default "changeme" in its args`),
			},
		},
		{
			name: "envFrom cannot be inspected",
			obj: func(t testing.TB) runtime.Object {
				return catalogDeployment(t, func(d *appsv1.Deployment) {
					d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "loom-config"}}}}
				})
			},
		},
		{
			name: "pod: init, regular and ephemeral containers",
			obj: func(t testing.TB) runtime.Object {
				return catalogPod(t, func(p *corev1.Pod) {
					p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Env: []corev1.EnvVar{{Name: "DATABASE_DSN", Value: "postgres://x"}}}}
					p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
						Name: "debug", Env: []corev1.EnvVar{{Name: "GITHUB_TOKEN", Value: "ghp_x"}}, Args: []string{"changeme"},
					}}}
				})
			},
			want: field.ErrorList{
				field.Forbidden(field.NewPath("spec", "initContainers").Index(0).Child("env").Index(0).Child("value"),
					`container "migrate" must take the secret-like variable "DATABASE_DSN" from a Secret (valueFrom.secretKeyRef), not a literal value`),
				field.Forbidden(field.NewPath("spec", "ephemeralContainers").Index(0).Child("env").Index(0),
					`container "debug" must not set the environment variable "GITHUB_TOKEN", not even from a Secret`),
				field.Forbidden(field.NewPath("spec", "ephemeralContainers").Index(0).Child("args").Index(0),
					`container "debug" must not pass the published default "changeme" in its args`),
			},
		},
		{
			name: "cronjob path",
			obj: func(t testing.TB) runtime.Object {
				return catalogCronJob(t, func(cj *batchv1.CronJob) {
					c := &cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
					c.Env[1] = corev1.EnvVar{Name: "LOOM_PASSWORD", Value: "hunter2"}
				})
			},
			want: field.ErrorList{field.Forbidden(field.NewPath("spec", "jobTemplate", "spec", "template", "spec", "containers").Index(0).Child("env").Index(1).Child("value"),
				`container "loom" must take the secret-like variable "LOOM_PASSWORD" from a Secret (valueFrom.secretKeyRef), not a literal value`)},
		},
	})

	// The config: other secret words, forbidden names and weak values.
	cfg := SecretEnvConfig{SecretNames: []string{"session-key", "AUTH"}, ForbiddenNames: []string{"AWS_SECRET_ACCESS_KEY"}, WeakValues: []string{"hunter2"}}
	catalogRun(t, secretEnv(cfg), []catalogCase{
		{
			name: "custom words",
			obj: withEnv(
				corev1.EnvVar{Name: "APP_SESSION_KEY", Value: "x"},
				corev1.EnvVar{Name: "OAUTH_URL", Value: "https://example.com"},
				corev1.EnvVar{Name: "BASIC_AUTH", Value: "x"},
				corev1.EnvVar{Name: "JWT_SECRET", Value: "changeme"},
				from("aws_secret_access_key", secretRef),
				corev1.EnvVar{Name: "NOTE", Value: "Hunter2"},
			),
			want: field.ErrorList{
				notFromSecret(env(2).Child("value"), "APP_SESSION_KEY", "a literal value"),
				notFromSecret(env(4).Child("value"), "BASIC_AUTH", "a literal value"),
				field.Forbidden(env(6), `container "loom" must not set the environment variable "aws_secret_access_key", not even from a Secret`),
				weakEnv(env(7).Child("value"), "NOTE", "hunter2"),
			},
		},
	})
}
