#!/usr/bin/env bash
# Self-signed CA, server certificate (for glasswatch's receivers) and an apiserver client
# certificate, for trying the compose stack. Use your own PKI in production.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/tls"
mkdir -p "$dir" && cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=glasswatch dev CA" -keyout ca.key -out ca.crt
openssl req -newkey rsa:2048 -nodes -subj "/CN=glasswatch" -keyout tls.key -out tls.csr
printf 'subjectAltName=DNS:glasswatch,DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile san.ext -out tls.crt
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver-client.key -out apiserver-client.csr
openssl x509 -req -in apiserver-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out apiserver-client.crt
rm -f ./*.csr san.ext ca.srl
chmod 600 ./*.key
echo "certificates in $dir"
