#!/usr/bin/env bash
# What stands in for the world around the install-guide test's machine, set up on it as root
# before the guide runs (tests/vm/test_install_guide.py): DNS for the site's name, and a Let's
# Encrypt. DOMAIN is set by the test.
set -euo pipefail
: "${DOMAIN:?}"

# DNS: the site's name is this machine.
echo "127.0.0.1 $DOMAIN" >> /etc/hosts

# The network's own certificate authorities: where the host reaches the package registries
# through a TLS-inspecting proxy, it trusts that proxy's CA, and so must this machine (the test
# copies the host's /usr/local/share/ca-certificates here first). uv trusts its own roots unless
# told to use the system's. (update-ca-certificates runs once, at the end: it takes minutes under
# software emulation.)
install -d /etc/uv
echo 'native-tls = true' > /etc/uv/uv.toml
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf

# Let's Encrypt: Debian's pebble, its test server, on 127.0.0.1:14000. It validates HTTP-01
# challenges on port 80, as Let's Encrypt does, and its certificates last 10 days, so that a real
# `certbot renew` renews them and the expiry alert (under 14 days) has something to say. Debian's
# pebble ships no certificate for its own HTTPS: one from a CA made here, trusted system-wide.
install -d -m 0700 /etc/pebble
cd /etc/pebble
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 30 -subj '/CN=test ACME server CA' -keyout ca.key -out ca.pem 2>/dev/null
openssl req "${ec[@]}" -subj /CN=localhost -keyout key.pem -out request.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in request.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile san.ext -out cert.pem 2>/dev/null
cat > pebble.json <<'JSON'
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
  "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": 864000}}
JSON
cp ca.pem /usr/local/share/ca-certificates/test-acme-server.crt
systemd-run --quiet --unit=pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 \
  /usr/bin/pebble -config /etc/pebble/pebble.json
for _ in $(seq 120); do
  curl -fsS --cacert ca.pem https://localhost:14000/dir >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS --cacert ca.pem https://localhost:14000/dir >/dev/null

# certbot asks pebble instead of Let's Encrypt (root's own certbot settings, not the package's
# /etc/letsencrypt/cli.ini, which an upgrade may replace).
install -d /root/.config/letsencrypt
echo 'server = https://localhost:14000/dir' >> /root/.config/letsencrypt/cli.ini

# The root of what pebble issues (made afresh at each start of pebble), trusted as a public CA
# is: by the blackbox exporter's probe of the site.
curl -fsS --cacert ca.pem https://localhost:15000/roots/0 \
  > /usr/local/share/ca-certificates/pebble-root.crt
update-ca-certificates >/dev/null
