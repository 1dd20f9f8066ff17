/**
 * CloudTrail `userIdentity` objects shaped as AWS writes them, for the benchmarks' generated records:
 * an IAM user carries `userName`, an assumed role its `sessionContext.sessionIssuer` (with the role's
 * ARN and name), the root user neither. `breakGlass` names the user or role the way our pack's rules
 * look for (`BreakGlass` in the name).
 */
export function userIdentity(type: 'Root' | 'IAMUser' | 'AssumedRole', n: number, breakGlass: boolean): Record<string, unknown> {
  const account = '111122223333';
  if (type === 'Root') return { type, principalId: account, arn: `arn:aws:iam::${account}:root`, accountId: account };
  if (type === 'IAMUser') {
    const userName = breakGlass ? 'BreakGlassAdmin' : `u${n}`;
    return {
      type,
      principalId: `AIDA${n}EXAMPLE`,
      arn: `arn:aws:iam::${account}:user/${userName}`,
      accountId: account,
      accessKeyId: `AKIA${n}EXAMPLE`,
      userName,
    };
  }
  const role = breakGlass ? 'BreakGlassRole' : `Role${n}`;
  return {
    type,
    principalId: `AROA${n}EXAMPLE:session-${n}`,
    arn: `arn:aws:sts::${account}:assumed-role/${role}/session-${n}`,
    accountId: account,
    accessKeyId: `ASIA${n}EXAMPLE`,
    sessionContext: {
      sessionIssuer: {
        type: 'Role',
        principalId: `AROA${n}EXAMPLE`,
        arn: `arn:aws:iam::${account}:role/${role}`,
        accountId: account,
        userName: role,
      },
      attributes: { creationDate: '2026-01-01T00:00:00Z', mfaAuthenticated: 'false' },
    },
  };
}
