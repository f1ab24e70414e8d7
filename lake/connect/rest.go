package connect

import "strings"

// What the text says of an Iceberg REST catalog (iceberg.REST). The engines read it live, as
// they read Glue; only its authentication and two AWS services change the text:
//   - an OAuth2 client credential (client_id:client_secret) or a bearer token, read from
//     CredentialVar or TokenVar by the engines that substitute variables (Trino, Spark), a
//     placeholder otherwise, never the secret itself;
//   - SigV4 for the service "s3tables" (Amazon S3 Tables, whose warehouse is the table
//     bucket's ARN) or "glue" (AWS Glue's Iceberg REST endpoint, https://glue.REGION.amazonaws.com/iceberg).

// CredentialVar and TokenVar are the environment variables the text reads a REST catalog's
// OAuth2 client credential and bearer token from: those osprey's --catalog https://... reads.
const (
	CredentialVar = "OSPREY_REST_CREDENTIAL"
	TokenVar      = "OSPREY_REST_TOKEN"
)

// restAuth is how a REST catalog authenticates.
type restAuth int

const (
	authNone restAuth = iota
	authCredential
	authToken
	authSigV4
)

func (l Lake) restAuth() restAuth {
	switch {
	case l.REST.SigV4 != "":
		return authSigV4
	case l.REST.Credential != "":
		return authCredential
	case l.REST.Token != "":
		return authToken
	}
	return authNone
}

func (l Lake) restAuthText() string {
	switch l.restAuth() {
	case authSigV4:
		return "signed with AWS SigV4 for " + l.REST.SigV4
	case authCredential:
		return "OAuth2 client credential (not printed)"
	case authToken:
		return "OAuth2 bearer token (not printed)"
	}
	return "no authentication"
}

// s3Tables reports whether the REST catalog is Amazon S3 Tables' Iceberg REST endpoint.
func (l Lake) s3Tables() bool {
	return l.REST.SigV4 == "s3tables" || strings.HasPrefix(l.REST.Warehouse, "arn:aws:s3tables:")
}

// glueREST reports whether the REST catalog is AWS Glue's Iceberg REST endpoint, whose tables
// are Glue tables.
func (l Lake) glueREST() bool { return l.REST.SigV4 == "glue" }

// tableBucket returns the S3 Tables table bucket of the warehouse's ARN
// (arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME), or a placeholder.
func (l Lake) tableBucket() string {
	if _, name, ok := strings.Cut(l.REST.Warehouse, ":bucket/"); ok && strings.HasPrefix(l.REST.Warehouse, "arn:aws:s3tables:") {
		return name
	}
	return "<table bucket>"
}

func (l Lake) warehouseOr(none string) string {
	if l.REST.Warehouse == "" {
		return none
	}
	return "warehouse " + l.REST.Warehouse
}

// oauthTokenURI is the REST catalog's OAuth2 token endpoint as the Iceberg REST specification
// places it (POST /v1/oauth/tokens), which the engines use unless told otherwise.
func (l Lake) oauthTokenURI() string { return strings.TrimSuffix(l.REST.URI, "/") + "/v1/oauth/tokens" }
